//! The account grain of the `bank` example (used by its binary and its tests): a persistent
//! grain generated from `proto/bank.proto` by this package's `build.rs`, and a teller that
//! moves money between accounts through the generated client, retrying each step until it
//! is done.

use std::time::{Duration, Instant};

use protoactor_cluster::persistent::{GrainStore, PersistentCtx, PersistentGrain};
use protoactor_cluster::{CallOptions, Cluster, GrainError, Kind};

/// The generated messages, grain traits, kinds and client of package `bank`.
pub mod proto {
    #![allow(missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/bank.rs"));
}

use proto::*;

protoactor_cluster::persistent::persistent_enum! {
    /// What happens to an account.
    #[derive(Debug, Clone)]
    pub enum AccountEvent { Deposited(Deposited), Withdrawn(Withdrawn) }
}

/// An account's state: rebuilt from its events, changed only by them.
#[derive(Default)]
pub struct AccountGrain {
    balance: i64,
    last_op_id: u64,
}

impl AccountGrain {
    /// A change already applied (a retried call): answered, not applied again.
    fn is_repeat(&self, op_id: u64) -> bool {
        op_id != 0 && op_id <= self.last_op_id
    }
}

impl PersistentGrain for AccountGrain {
    type Event = AccountEvent;
    type Snapshot = AccountState;

    fn apply(&mut self, event: AccountEvent) {
        let (delta, op_id) = match event {
            AccountEvent::Deposited(d) => (d.amount, d.op_id),
            AccountEvent::Withdrawn(w) => (-w.amount, w.op_id),
        };
        self.balance += delta;
        self.last_op_id = self.last_op_id.max(op_id);
    }
    fn snapshot(&self) -> AccountState {
        AccountState {
            balance: self.balance,
            last_op_id: self.last_op_id,
        }
    }
    fn restore(&mut self, s: AccountState) {
        self.balance = s.balance;
        self.last_op_id = s.last_op_id;
    }
}

fn balance(ctx: &PersistentCtx<'_, AccountGrain>) -> Balance {
    Balance {
        amount: ctx.balance,
        events: ctx.next_index(),
    }
}

impl AccountPersistent for AccountGrain {
    fn deposit(ctx: &mut PersistentCtx<'_, Self>, req: Change) -> Result<Balance, GrainError> {
        if req.amount <= 0 {
            return Err(GrainError::invalid_argument("a deposit must be positive"));
        }
        if !ctx.is_repeat(req.op_id) {
            ctx.persist(AccountEvent::Deposited(Deposited {
                amount: req.amount,
                op_id: req.op_id,
            }));
        }
        Ok(balance(ctx))
    }

    fn withdraw(ctx: &mut PersistentCtx<'_, Self>, req: Change) -> Result<Balance, GrainError> {
        if req.amount <= 0 {
            return Err(GrainError::invalid_argument(
                "a withdrawal must be positive",
            ));
        }
        if !ctx.is_repeat(req.op_id) {
            if ctx.balance < req.amount {
                // A stale activation must not refuse on old state either: the refusal is
                // answered only if the journal has nothing this activation has not seen.
                ctx.ensure_current();
                return Err(GrainError::failed_precondition(format!(
                    "balance {} is below {}",
                    ctx.balance, req.amount
                )));
            }
            ctx.persist(AccountEvent::Withdrawn(Withdrawn {
                amount: req.amount,
                op_id: req.op_id,
            }));
        }
        Ok(balance(ctx))
    }

    fn get_balance(ctx: &mut PersistentCtx<'_, Self>, _req: Empty) -> Result<Balance, GrainError> {
        ctx.ensure_current();
        Ok(balance(ctx))
    }
}

/// The `Account` kind, journaled in `store`.
pub fn account_kind(store: GrainStore) -> Kind {
    account_persistent_kind(store, AccountGrain::default)
}

/// Moves money between accounts through one cluster node, one step at a time: each step
/// (withdraw, then deposit) carries its own operation id and is retried until the account
/// answers it, so a member that dies mid-call delays a transfer but never loses or doubles
/// money.
pub struct Teller {
    cluster: Cluster,
    next_op: u64,
    /// How long one step may keep failing before the teller gives up.
    pub patience: Duration,
    /// Failed attempts so far (timeouts, members gone, stale activations).
    pub retries: u64,
}

impl Teller {
    /// A teller calling through `cluster`; operation ids start above `first_op` (ids must
    /// grow across tellers of the same accounts: pass the previous teller's [`Teller::last_op`]).
    pub fn new(cluster: &Cluster, first_op: u64) -> Self {
        Teller {
            cluster: cluster.clone(),
            next_op: first_op + 1,
            patience: Duration::from_secs(60),
            retries: 0,
        }
    }

    /// The last operation id used.
    pub fn last_op(&self) -> u64 {
        self.next_op - 1
    }

    fn client(&self, account: &str) -> AccountClient {
        AccountClient::new(&self.cluster, account)
            .with_options(CallOptions::default().with_timeout(Duration::from_secs(5)))
    }

    /// Calls `f` until it answers something other than a transport failure or a stale
    /// activation (those may succeed on the next attempt).
    fn until_answered(
        &mut self,
        mut f: impl FnMut() -> Result<Balance, GrainError>,
    ) -> Result<Balance, GrainError> {
        let give_up = Instant::now() + self.patience;
        loop {
            match f() {
                Err(e)
                    if (e.cluster_error().is_some() || e.has_reason("UNAVAILABLE"))
                        && Instant::now() < give_up =>
                {
                    self.retries += 1;
                }
                other => return other,
            }
        }
    }

    /// Deposits `amount` into `account`.
    pub fn deposit(&mut self, account: &str, amount: i64) -> Result<Balance, GrainError> {
        let (client, op_id) = (self.client(account), self.take_op());
        self.until_answered(|| client.deposit_blocking(Change { amount, op_id }))
    }

    /// Moves `amount` from `from` to `to`; `Ok(false)` if `from` has too little.
    pub fn transfer(&mut self, from: &str, to: &str, amount: i64) -> Result<bool, GrainError> {
        let (source, op_id) = (self.client(from), self.take_op());
        match self.until_answered(|| source.withdraw_blocking(Change { amount, op_id })) {
            Ok(_) => {}
            Err(e) if e.has_reason("FAILED_PRECONDITION") => return Ok(false),
            Err(e) => return Err(e),
        }
        self.deposit(to, amount).map(|_| true)
    }

    /// The balance of `account`.
    pub fn balance(&mut self, account: &str) -> Result<Balance, GrainError> {
        let client = self.client(account);
        self.until_answered(|| client.get_balance_blocking(Empty {}))
    }

    /// The sum of the balances of `accounts`.
    pub fn total(&mut self, accounts: &[String]) -> Result<i64, GrainError> {
        let mut sum = 0;
        for a in accounts {
            sum += self.balance(a)?.amount;
        }
        Ok(sum)
    }

    fn take_op(&mut self) -> u64 {
        self.next_op += 1;
        self.next_op - 1
    }
}

/// A small deterministic generator (xorshift), so that a run can be repeated.
pub struct Dice(u64);

impl Dice {
    /// Seeded with `seed` (not 0).
    pub fn new(seed: u64) -> Self {
        Dice(seed.max(1))
    }
    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}
