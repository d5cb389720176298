//! Metric handles by label set, for the series nearly every request touches. A prometheus
//! `Family` hashes a label set with SipHash, under its lock, at each look-up: about 500
//! instructions, three or four times per request. Here a label set seen before is found with
//! FxHash (the labels are the proxy's own: configured tenant ids and fixed names, nothing a
//! client chooses), and its handle, which shares the family's series, is used directly.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{PoisonError, RwLock};

use prometheus_client::metrics::family::{Family, MetricConstructor};
use rustc_hash::FxBuildHasher;

pub struct Handles<S, M, C = fn() -> M> {
    family: Family<S, M, C>,
    seen: RwLock<HashMap<S, M, FxBuildHasher>>,
}

impl<S, M, C> std::fmt::Debug for Handles<S, M, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handles").finish_non_exhaustive()
    }
}

impl<S, M, C> Handles<S, M, C>
where
    S: Clone + Hash + Eq,
    M: Clone,
    C: MetricConstructor<M>,
{
    /// Handles of `family`'s series; the family itself is what the registry encodes.
    pub fn new(family: Family<S, M, C>) -> Self {
        Self {
            family,
            seen: RwLock::default(),
        }
    }

    /// Calls `f` with the series of `labels`, made on first use.
    pub fn with<R>(&self, labels: &S, f: impl FnOnce(&M) -> R) -> R {
        if let Some(metric) = self
            .seen
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(labels)
        {
            return f(metric);
        }
        let metric = self.family.get_or_create(labels).clone();
        let out = f(&metric);
        self.seen
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(labels.clone(), metric);
        out
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::encoding::text::encode;
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::registry::Registry;

    use super::*;

    #[test]
    fn a_handle_counts_in_the_family_the_registry_shows() {
        let family = Family::<Vec<(String, String)>, Counter>::default();
        let mut registry = Registry::default();
        registry.register("calls", "calls", family.clone());
        let handles = Handles::new(family);
        let labels = |t: &str| vec![("tenant".to_string(), t.to_string())];
        for _ in 0..3 {
            handles.with(&labels("acme"), |c| c.inc());
        }
        handles.with(&labels("other"), |c| c.inc());
        let mut text = String::new();
        encode(&mut text, &registry).expect("encodes");
        assert!(text.contains("calls_total{tenant=\"acme\"} 3"), "{text}");
        assert!(text.contains("calls_total{tenant=\"other\"} 1"), "{text}");
    }
}
