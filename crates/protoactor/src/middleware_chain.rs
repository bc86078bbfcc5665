//! The one builder of middleware chains (receiver, sender and spawn middleware, on props
//! and on root contexts): middleware wraps the next step, the first added runs outermost.

use std::sync::Arc;

/// A middleware: wraps the next step of a chain of `F`s.
pub type Middleware<F> = Arc<dyn Fn(F) -> F + Send + Sync>;

/// Middleware in the order added, and the chain built from them over a base step.
pub(crate) struct MiddlewareChain<F> {
    middleware: Vec<Middleware<F>>,
    chain: Option<F>,
}

impl<F: Clone> MiddlewareChain<F> {
    /// No middleware: callers take their direct path.
    pub(crate) fn new() -> Self {
        Self {
            middleware: Vec::new(),
            chain: None,
        }
    }

    /// Adds `middleware` (innermost so far) and rebuilds the chain over `base`.
    pub(crate) fn push(&mut self, middleware: Middleware<F>, base: F) {
        self.middleware.push(middleware);
        self.chain = Some(self.middleware.iter().rev().fold(base, |next, mw| mw(next)));
    }

    /// The built chain (`None` without middleware).
    #[inline]
    pub(crate) fn get(&self) -> Option<&F> {
        self.chain.as_ref()
    }
}

impl<F: Clone> Clone for MiddlewareChain<F> {
    fn clone(&self) -> Self {
        Self {
            middleware: self.middleware.clone(),
            chain: self.chain.clone(),
        }
    }
}

impl<F> std::fmt::Debug for MiddlewareChain<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MiddlewareChain({} middleware)", self.middleware.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Step = Arc<dyn Fn(&mut Vec<&'static str>) + Send + Sync>;

    fn tag(name: &'static str) -> Middleware<Step> {
        Arc::new(move |next: Step| -> Step {
            Arc::new(move |log: &mut Vec<&'static str>| {
                log.push(name);
                next(log)
            })
        })
    }

    /// The first middleware added runs outermost, and the base runs last.
    #[test]
    fn first_added_runs_outermost() {
        let mut chain: MiddlewareChain<Step> = MiddlewareChain::new();
        assert!(chain.get().is_none());
        let base: Step = Arc::new(|log: &mut Vec<&'static str>| log.push("base"));
        chain.push(tag("a"), base.clone());
        chain.push(tag("b"), base);
        let mut log = Vec::new();
        chain.get().expect("built")(&mut log);
        assert_eq!(log, ["a", "b", "base"]);
    }
}
