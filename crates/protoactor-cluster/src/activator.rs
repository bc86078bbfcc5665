//! The placement actor, registered as `partition-activator` on every node (protoactor-go's
//! disthash `placementActor`). It answers `ActivationRequest`s for the kinds this node hosts
//! by spawning the grain as its child `partition-activator/<identity>$<n>` (the PID shape Go
//! produces), returns the existing PID for an active identity, and answers
//! `ActivationResponse { failed: true }` for a kind it does not host (Go's module stays
//! silent and the caller waits 5 s). On a new topology it poisons the activations it no
//! longer owns; when a grain stops it broadcasts `ActivationTerminated` to the `eventstream`
//! of every member, itself included.

use protoactor::ContextOps;
use std::collections::HashMap;

use protoactor::{Actor, Context, Pid, Props, Terminated};
use protoactor_remote::PidExt;

use crate::hash::rendezvous_owner;
use crate::identity_lookup::{LookupContext, WeakLookupContext};
use crate::member::AddressedMember;
use crate::proto::{
    ActivationRequest, ActivationResponse, ActivationTerminated, ClusterIdentity, ClusterTopology,
};

/// The actor name of the placement actor, as Go addresses it on every member.
pub const PARTITION_ACTIVATOR: &str = "partition-activator";
/// The actor name of the event stream process, where `ActivationTerminated` is sent.
pub const EVENT_STREAM: &str = "eventstream";

pub(crate) fn props(ctx: &LookupContext) -> Props {
    let weak = ctx.downgrade();
    Props::from_producer(move || PlacementActor {
        node: weak.clone(),
        actors: HashMap::new(),
        by_pid: HashMap::new(),
    })
}

struct PlacementActor {
    node: WeakLookupContext,
    actors: HashMap<ClusterIdentity, Pid>,
    by_pid: HashMap<Pid, ClusterIdentity>,
}

impl Actor for PlacementActor {
    fn receive(&mut self, ctx: &mut Context) {
        let Some(node) = self.node.upgrade() else {
            return;
        };
        if let Some(req) = ctx.message_as::<ActivationRequest>() {
            let ci = req.cluster_identity.clone().unwrap_or_default();
            let resp = self.activate(&node, ctx, ci);
            ctx.respond(resp);
        } else if let Some(t) = ctx.message_as::<ClusterTopology>() {
            let t = t.clone();
            self.on_topology(&node, ctx, &t);
        } else if let Some(t) = ctx.message_as::<Terminated>() {
            let who = t.who.clone();
            self.on_terminated(&node, ctx, &who);
        }
    }
}

impl PlacementActor {
    fn activate(
        &mut self,
        node: &LookupContext,
        ctx: &mut Context,
        ci: ClusterIdentity,
    ) -> ActivationResponse {
        if let Some(pid) = self.actors.get(&ci) {
            return ActivationResponse {
                pid: Some(pid.to_proto()),
                ..Default::default()
            };
        }
        let failed = ActivationResponse {
            failed: true,
            ..Default::default()
        };
        if let Err(e) = ci.validate() {
            tracing::warn!(error = %e, "activation request refused");
            return failed;
        }
        let Some(kind) = node.kind(&ci.kind) else {
            tracing::debug!(kind = %ci.kind, "activation request for a kind this node does not host");
            return failed;
        };
        // `<identity>$<n>`: the name Go's SpawnPrefix(props, identity) gives the child. The
        // id is known before the spawn, so the grain can read its identity from `Started` on.
        let name = format!("{}{}", ci.identity, ctx.system().registry().next_id());
        let id = format!("{}/{}", ctx.self_pid().id(), name);
        node.register_activation(&id, ci.clone());
        match ctx.spawn_named_unvalidated(kind.props(), &name) {
            Ok(pid) => {
                self.actors.insert(ci.clone(), pid.clone());
                self.by_pid.insert(pid.clone(), ci);
                ActivationResponse {
                    pid: Some(pid.to_proto()),
                    ..Default::default()
                }
            }
            Err(e) => {
                node.unregister_activation(&id);
                tracing::warn!(identity = %ci, error = %e, "grain activation failed");
                failed
            }
        }
    }

    fn on_topology(&mut self, node: &LookupContext, ctx: &mut Context, t: &ClusterTopology) {
        let mut members: Vec<AddressedMember> = t
            .members
            .iter()
            .cloned()
            .map(AddressedMember::new)
            .collect();
        members.sort_by(|a, b| a.member.id.cmp(&b.member.id));
        let me = node.address();
        for (ci, pid) in &self.actors {
            let owner =
                rendezvous_owner(&members, &ci.kind, &ci.identity).map(|m| m.address.as_str());
            if owner != Some(me) {
                tracing::debug!(identity = %ci, ?owner, "grain moved: stopping the local activation");
                ctx.poison(pid);
            }
        }
    }

    fn on_terminated(&mut self, node: &LookupContext, ctx: &mut Context, who: &Pid) {
        let Some(ci) = self.by_pid.remove(who) else {
            return;
        };
        if self.actors.get(&ci) == Some(who) {
            self.actors.remove(&ci);
        }
        node.unregister_activation(who.id());
        let msg = ActivationTerminated {
            pid: Some(who.to_proto()),
            cluster_identity: Some(ci),
        };
        let me = node.address();
        let mut sent_to_self = false;
        for m in node.member_list().topology().members() {
            let address = m.address();
            sent_to_self |= address == me;
            ctx.send(&Pid::new(address, EVENT_STREAM), msg.clone());
        }
        if !sent_to_self {
            ctx.send(&Pid::new(me, EVENT_STREAM), msg);
        }
    }
}
