//! The two hashes the Go cluster relies on, bit for bit:
//!
//! * the **topology hash**: murmur3 x64_128 (seed 0, first 64-bit half) of the member ids
//!   sorted ascending and concatenated with no separator ([`topology_hash`]);
//! * the **owner hash** of disthash: rendezvous hashing with FNV-1a-32 of
//!   `identity ++ "host:port"` over the members that host the kind, in ascending id order,
//!   the first (lowest id) member keeping a tie ([`rendezvous_owner`], [`owner_of`]).

use crate::member::AddressedMember;
use crate::proto::Member;

/// FNV-1a 32-bit offset basis.
const FNV_OFFSET: u32 = 2_166_136_261;
/// FNV-1a 32-bit prime.
const FNV_PRIME: u32 = 16_777_619;

/// Continues an FNV-1a-32 hash with `bytes`.
#[inline]
fn fnv1a32_update(mut h: u32, bytes: &[u8]) -> u32 {
    for &b in bytes {
        h ^= b as u32;
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// FNV-1a-32 of `bytes` (Go's `hash/fnv.New32a`).
pub fn fnv1a32(bytes: &[u8]) -> u32 {
    fnv1a32_update(FNV_OFFSET, bytes)
}

/// murmur3 x64_128 with seed 0, returning the first 64-bit half (`h1`), as
/// `github.com/twmb/murmur3`'s `Sum64` does.
pub fn murmur3_x64_128_h1(data: &[u8]) -> u64 {
    const C1: u64 = 0x87c3_7b91_1142_53d5;
    const C2: u64 = 0x4cf5_ad43_2745_937f;
    let (mut h1, mut h2) = (0u64, 0u64);
    let mut blocks = data.chunks_exact(16);
    for block in &mut blocks {
        let k1 = u64::from_le_bytes(block[..8].try_into().expect("8 bytes"));
        let k2 = u64::from_le_bytes(block[8..].try_into().expect("8 bytes"));
        h1 ^= k1.wrapping_mul(C1).rotate_left(31).wrapping_mul(C2);
        h1 = h1.rotate_left(27).wrapping_add(h2);
        h1 = h1.wrapping_mul(5).wrapping_add(0x52dc_e729);
        h2 ^= k2.wrapping_mul(C2).rotate_left(33).wrapping_mul(C1);
        h2 = h2.rotate_left(31).wrapping_add(h1);
        h2 = h2.wrapping_mul(5).wrapping_add(0x3849_5ab5);
    }
    let tail = blocks.remainder();
    let (mut k1, mut k2) = (0u64, 0u64);
    for (i, &b) in tail.iter().enumerate() {
        if i < 8 {
            k1 |= (b as u64) << (8 * i);
        } else {
            k2 |= (b as u64) << (8 * (i - 8));
        }
    }
    if tail.len() > 8 {
        h2 ^= k2.wrapping_mul(C2).rotate_left(33).wrapping_mul(C1);
    }
    if !tail.is_empty() {
        h1 ^= k1.wrapping_mul(C1).rotate_left(31).wrapping_mul(C2);
    }
    let len = data.len() as u64;
    h1 ^= len;
    h2 ^= len;
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    h1 = fmix64(h1);
    h2 = fmix64(h2);
    h1.wrapping_add(h2)
}

fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

/// The topology hash of a set of member ids (any order; sorted here, on a copy): murmur3
/// x64_128 `h1` of the ids sorted ascending, concatenated. The empty set hashes to 0.
pub fn topology_hash<S: AsRef<str>>(ids: &[S]) -> u64 {
    if ids.is_empty() {
        return 0;
    }
    let mut sorted: Vec<&str> = ids.iter().map(AsRef::as_ref).collect();
    sorted.sort_unstable();
    murmur3_x64_128_h1(sorted.concat().as_bytes())
}

/// A candidate for [`rendezvous_owner`]: its address (`host:port`) and whether it hosts the
/// kind asked for.
pub trait RendezvousMember {
    /// `host:port`, exactly as the member advertises it.
    fn rendezvous_address(&self) -> &str;
    /// True if the member hosts `kind` (exact, case-sensitive).
    fn hosts_kind(&self, kind: &str) -> bool;
}

impl RendezvousMember for AddressedMember {
    fn rendezvous_address(&self) -> &str {
        &self.address
    }
    fn hosts_kind(&self, kind: &str) -> bool {
        self.member.has_kind(kind)
    }
}

/// The owner of `identity` of `kind` among `members`, which must be in ascending member-id
/// order (as the member list keeps them): the eligible member with the highest
/// FNV-1a-32(`identity ++ address`); on a tie the earlier one; a single eligible member wins
/// without hashing; `None` when no member hosts the kind (or, as in Go, every score is 0).
pub fn rendezvous_owner<'a, M: RendezvousMember>(
    members: &'a [M],
    kind: &str,
    identity: &str,
) -> Option<&'a M> {
    let mut eligible = members.iter().filter(|m| m.hosts_kind(kind));
    let first = eligible.next()?;
    let mut rest = eligible.peekable();
    if rest.peek().is_none() {
        return Some(first);
    }
    let prefix = fnv1a32_update(FNV_OFFSET, identity.as_bytes());
    let score = |m: &M| fnv1a32_update(prefix, m.rendezvous_address().as_bytes());
    let mut best: Option<&M> = None;
    let mut best_score = 0u32;
    for m in std::iter::once(first).chain(rest) {
        let s = score(m);
        // Strictly greater: a tie keeps the earlier (lower id) member, as Go does.
        if s > best_score {
            best = Some(m);
            best_score = s;
        }
    }
    best
}

/// The owner of `identity` of `kind` among `members` (any order): the member whose
/// address disthash picks, exactly as a Go member computes it. `None` if no member hosts
/// the kind.
pub fn owner_of<'a>(members: &'a [Member], kind: &str, identity: &str) -> Option<&'a Member> {
    let mut sorted: Vec<(usize, AddressedMember)> = members
        .iter()
        .enumerate()
        .map(|(i, m)| (i, AddressedMember::new(m.clone())))
        .collect();
    sorted.sort_by(|a, b| a.1.member.id.cmp(&b.1.member.id));
    let ordered: Vec<AddressedMember> = sorted.iter().map(|(_, m)| m.clone()).collect();
    let owner = rendezvous_owner(&ordered, kind, identity)?;
    let at = ordered.iter().position(|m| std::ptr::eq(m, owner))?;
    Some(&members[sorted[at].0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topology_hash_matches_go_test_vectors() {
        assert_eq!(topology_hash(&["a", "b", "c"]), 13012657714217449575);
        assert_eq!(topology_hash(&["member-a"]), 17127520491635607406);
        assert_eq!(
            topology_hash(&["member-a", "member-b", "member-c"]),
            6993307924462839852
        );
        assert_eq!(topology_hash::<&str>(&[]), 0);
    }

    #[test]
    fn topology_hash_ignores_order() {
        assert_eq!(
            topology_hash(&["member-c", "member-a", "member-b"]),
            6993307924462839852
        );
    }

    #[test]
    fn murmur3_covers_every_block_and_tail_length() {
        // Values printed by github.com/twmb/murmur3 v1.1.8 `Sum64` (the library Go uses)
        // for prefixes of one string: empty, tails of 1..15 bytes, one and more blocks.
        let s = b"The quick brown fox jumps over the lazy dog, twice over";
        let go: [(usize, u64); 11] = [
            (1, 10089038975731001498),
            (7, 17353359175353947593),
            (8, 7227057926183809485),
            (9, 4008313639699804501),
            (15, 5193631926696776214),
            (16, 11318184631244370628),
            (17, 10518547767039093166),
            (31, 11180386039393207561),
            (32, 16098953715345251023),
            (33, 7552877207538611165),
            (55, 17065100528403357150),
        ];
        assert_eq!(murmur3_x64_128_h1(b""), 0);
        for (n, expected) in go {
            assert_eq!(murmur3_x64_128_h1(&s[..n]), expected, "prefix of {n} bytes");
        }
    }

    #[test]
    fn fnv1a32_matches_go_test_vector() {
        assert_eq!(fnv1a32(b"abc127.0.0.1:8090"), 1961927387);
    }

    fn owner(members: &[Member], kind: &str, identity: &str) -> Option<String> {
        owner_of(members, kind, identity).map(Member::address)
    }

    #[test]
    fn owner_matches_go_test_vectors_one_kind() {
        let members = [
            Member::new("127.0.0.1", 8090, "a", ["Hello"]),
            Member::new("127.0.0.1", 8091, "b", ["Hello"]),
            Member::new("127.0.0.1", 8092, "c", ["Hello"]),
        ];
        for (identity, port) in [
            ("abc", 8092),
            ("user-1", 8092),
            ("user-2", 8090),
            ("user-3", 8091),
            ("x/y", 8092),
            ("", 8090),
        ] {
            assert_eq!(
                owner(&members, "Hello", identity),
                Some(format!("127.0.0.1:{port}")),
                "identity {identity:?}"
            );
        }
        // Input order does not matter: members are ranked by id.
        let mut reversed = members.clone();
        reversed.reverse();
        assert_eq!(
            owner(&reversed, "Hello", "user-3").unwrap(),
            "127.0.0.1:8091"
        );
    }

    #[test]
    fn owner_matches_go_test_vectors_two_kinds() {
        let members = [
            Member::new("10.0.0.1", 8000, "a", ["Hello"]),
            Member::new("10.0.0.2", 8000, "b", ["Hello", "Other"]),
            Member::new("10.0.0.3", 8000, "c", ["Other"]),
        ];
        for (identity, hello, other) in [
            ("alice", "10.0.0.1", "10.0.0.3"),
            ("bob", "10.0.0.1", "10.0.0.2"),
            ("carol", "10.0.0.2", "10.0.0.2"),
            ("dave", "10.0.0.2", "10.0.0.3"),
            ("ünïcode", "10.0.0.2", "10.0.0.2"),
        ] {
            assert_eq!(
                owner(&members, "Hello", identity).unwrap(),
                format!("{hello}:8000")
            );
            assert_eq!(
                owner(&members, "Other", identity).unwrap(),
                format!("{other}:8000")
            );
        }
    }

    #[test]
    fn owner_edge_cases() {
        let one = [Member::new("h", 1, "only", ["K"])];
        assert_eq!(owner(&one, "K", "anything").unwrap(), "h:1");
        assert_eq!(
            owner(&one, "k", "anything"),
            None,
            "kinds are case-sensitive"
        );
        assert_eq!(owner(&[], "K", "x"), None);
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    /// The rule written out the slow, obvious way: the highest FNV-1a-32 of the string
    /// `identity + address` among members hosting the kind, lower id on a tie.
    fn naive_owner(members: &[Member], kind: &str, identity: &str) -> Option<String> {
        let mut eligible: Vec<&Member> = members.iter().filter(|m| m.has_kind(kind)).collect();
        eligible.sort_by(|a, b| a.id.cmp(&b.id));
        match eligible.len() {
            0 => None,
            1 => Some(eligible[0].address()),
            _ => {
                let mut best: Option<(&Member, u32)> = None;
                for m in eligible {
                    let s = fnv1a32(format!("{identity}{}", m.address()).as_bytes());
                    if s > best.map_or(0, |b| b.1) {
                        best = Some((m, s));
                    }
                }
                best.map(|(m, _)| m.address())
            }
        }
    }

    fn members() -> impl Strategy<Value = Vec<Member>> {
        // Unique ids and ports; kinds drawn from a small set so some members lack a kind.
        prop::collection::btree_map(
            "[a-z0-9]{1,8}",
            (1u16..65535, prop::collection::btree_set("[AB]", 0..=2)),
            0..8,
        )
        .prop_map(|m| {
            m.into_iter()
                .map(|(id, (port, kinds))| Member::new("10.0.0.1", port, id, kinds))
                .collect()
        })
    }

    proptest! {
        #[test]
        fn owner_is_the_naive_rule(ms in members(), identity in "\\PC{0,12}", kind in "[AB]") {
            let got = owner_of(&ms, &kind, &identity).map(Member::address);
            prop_assert_eq!(got, naive_owner(&ms, &kind, &identity));
        }

        #[test]
        fn owner_hosts_the_kind_and_ignores_input_order(
            ms in members(), identity in "\\PC{0,12}", kind in "[AB]", seed in any::<u64>()
        ) {
            let owner = owner_of(&ms, &kind, &identity).cloned();
            match &owner {
                Some(o) => prop_assert!(o.has_kind(&kind)),
                None => prop_assert!(ms.iter().all(|m| !m.has_kind(&kind))),
            }
            let mut shuffled = ms.clone();
            let n = shuffled.len().max(1);
            shuffled.rotate_left((seed as usize) % n);
            shuffled.reverse();
            prop_assert_eq!(owner_of(&shuffled, &kind, &identity).cloned(), owner);
        }

        /// Rendezvous stability: removing a member that is not the owner never moves a grain,
        /// so a member leaving only moves its own grains.
        #[test]
        fn removing_another_member_keeps_the_owner(
            ms in members(), identity in "\\PC{0,12}", kind in "[AB]", pick in any::<usize>()
        ) {
            prop_assume!(!ms.is_empty());
            let owner = owner_of(&ms, &kind, &identity).cloned();
            let removed = &ms[pick % ms.len()];
            prop_assume!(Some(removed) != owner.as_ref());
            let rest: Vec<Member> = ms.iter().filter(|m| m.id != removed.id).cloned().collect();
            prop_assert_eq!(owner_of(&rest, &kind, &identity).cloned(), owner);
        }
    }
}
