//! The test provider: members in one process share an [`InMemAgent`], and every register or
//! deregister pushes the whole member list to every subscribed node at once (as
//! protoactor-go's test provider does). It cannot span processes.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::error::ClusterError;
use crate::proto::Member;
use crate::provider::{ClusterProvider, ProviderContext, ProviderFuture};

#[derive(Default)]
struct AgentState {
    members: BTreeMap<String, Member>,
    subscribers: Vec<(u64, ProviderContext)>,
    next: u64,
}

/// The shared in-memory membership of the nodes of one test cluster.
#[derive(Default)]
pub struct InMemAgent {
    state: Mutex<AgentState>,
    /// Held while pushing, so every node sees the lists in the same order.
    notify: Mutex<()>,
}

impl InMemAgent {
    /// A new, empty agent.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The registered members, ascending by id.
    pub fn members(&self) -> Vec<Member> {
        self.state.lock().members.values().cloned().collect()
    }

    /// Registers `member` (replacing one with the same id) and notifies everyone.
    pub fn register(&self, member: Member) {
        self.state.lock().members.insert(member.id.clone(), member);
        self.notify_all();
    }

    /// Removes the member `id` and notifies everyone (what a provider does when a member's
    /// registration expires, e.g. after a crash).
    pub fn deregister(&self, id: &str) {
        self.state.lock().members.remove(id);
        self.notify_all();
    }

    fn subscribe(&self, ctx: ProviderContext) -> u64 {
        let id = {
            let mut st = self.state.lock();
            st.next += 1;
            let id = st.next;
            st.subscribers.push((id, ctx));
            id
        };
        self.notify_all();
        id
    }

    fn unsubscribe(&self, id: u64) {
        self.state.lock().subscribers.retain(|(s, _)| *s != id);
    }

    fn notify_all(&self) {
        let _order = self.notify.lock();
        let (members, subscribers) = {
            let st = self.state.lock();
            let members: Vec<Member> = st.members.values().cloned().collect();
            let subs: Vec<ProviderContext> =
                st.subscribers.iter().map(|(_, c)| c.clone()).collect();
            (members, subs)
        };
        for s in subscribers {
            s.update_members(members.clone());
        }
    }
}

/// A provider backed by an [`InMemAgent`] shared by the nodes of one process.
pub struct TestProvider {
    agent: Arc<InMemAgent>,
    registration: Mutex<Option<(u64, Option<String>)>>,
}

impl TestProvider {
    /// A provider for one node, on the shared `agent`.
    pub fn new(agent: &Arc<InMemAgent>) -> Self {
        TestProvider {
            agent: agent.clone(),
            registration: Mutex::new(None),
        }
    }

    fn start(&self, ctx: ProviderContext, register: bool) -> Result<(), ClusterError> {
        let mut reg = self.registration.lock();
        if reg.is_some() {
            return Err(ClusterError::Provider(
                "the test provider is already started".into(),
            ));
        }
        let member = ctx.self_member().clone();
        let sub = self.agent.subscribe(ctx);
        let id = if register {
            self.agent.register(member.clone());
            Some(member.id)
        } else {
            None
        };
        *reg = Some((sub, id));
        Ok(())
    }
}

impl ClusterProvider for TestProvider {
    fn start_member(&self, ctx: ProviderContext) -> Result<(), ClusterError> {
        self.start(ctx, true)
    }

    fn start_client(&self, ctx: ProviderContext) -> Result<(), ClusterError> {
        self.start(ctx, false)
    }

    fn shutdown(&self, graceful: bool) -> ProviderFuture {
        let taken = self.registration.lock().take();
        if let Some((sub, id)) = taken {
            self.agent.unsubscribe(sub);
            // Not graceful: stay registered, as a crashed node would until its TTL ran out.
            if let (true, Some(id)) = (graceful, id) {
                self.agent.deregister(&id);
            }
        }
        Box::pin(async { Ok(()) })
    }
}
