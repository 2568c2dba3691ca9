//! Experiment names from a format with placeholders, as the reference frames them.

use std::collections::BTreeMap;

use crate::collect::Discovered;

/// The reference's default format.
pub const DEFAULT_FORMAT: &str =
    "%datasource%|%clustername%|%namespace%|%workloadname%(%workloadtype%)|%containername%";

/// The name of a namespace experiment: `datasource|clustername|namespace`, as the reference
/// names them.
pub fn namespace_experiment_name(datasource: &str, namespace: &str) -> String {
    format!("{datasource}|default|{namespace}")
}

/// The name of `c`'s experiment. `%label:<name>%` takes the value of that include label, or
/// `unknown<name>` when the job has none (also when it has no include labels at all, where
/// the reference left the placeholder in the name).
pub fn experiment_name(
    format: &str,
    datasource: &str,
    c: &Discovered,
    labels: &BTreeMap<String, String>,
) -> String {
    let mut out = format
        .replace("%datasource%", datasource)
        .replace("%clustername%", "default")
        .replace("%namespace%", &c.namespace)
        .replace("%workloadname%", &c.workload)
        .replace("%workloadtype%", &c.workload_type)
        .replace("%containername%", &c.container);
    while let Some(start) = out.find("%label:") {
        let rest = &out[start + 7..];
        let Some(len) = rest.find('%') else { break };
        let name = &rest[..len];
        if name.is_empty()
            || !name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
        {
            break;
        }
        let value = labels
            .get(name)
            .cloned()
            .unwrap_or_else(|| format!("unknown{name}"));
        out.replace_range(start..start + 7 + len + 1, &value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coredns() -> Discovered {
        Discovered {
            namespace: "kube-system".into(),
            workload: "coredns".into(),
            workload_type: "deployment".into(),
            container: "coredns".into(),
            image: "i".into(),
        }
    }

    #[test]
    fn names_follow_the_format() {
        let none = BTreeMap::new();
        assert_eq!(
            experiment_name(DEFAULT_FORMAT, "prometheus-1", &coredns(), &none),
            "prometheus-1|default|kube-system|coredns(deployment)|coredns"
        );
        let format = "%label:org_id%|%label:cluster_id%|%namespace%|%workloadtype%|%workloadname%|%containername%";
        let labels: BTreeMap<String, String> = [("org_id".to_owned(), "ABCOrga".to_owned())].into();
        assert_eq!(
            experiment_name(format, "p", &coredns(), &labels),
            "ABCOrga|unknowncluster_id|kube-system|deployment|coredns|coredns"
        );
        assert_eq!(
            experiment_name("%label:x%", "p", &coredns(), &none),
            "unknownx"
        );
    }
}
