//! The Kubernetes manifest (`deploy/kubernetes/daemonset.yaml`) and its Dockerfile: the
//! fields a node agent needs and the ones that keep it least-privileged.

use yaml_rust2::{Yaml, YamlLoader};

fn at<'a>(y: &'a Yaml, path: &str) -> &'a Yaml {
    path.split('.').fold(y, |y, k| match k.parse::<usize>() {
        Ok(i) => &y[i],
        Err(_) => &y[k],
    })
}

#[test]
fn the_daemonset_runs_on_the_host_s_pids_with_capabilities_not_privileges() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes");
    let text = std::fs::read_to_string(root.join("daemonset.yaml")).expect("daemonset.yaml");
    let docs = YamlLoader::load_from_str(&text).expect("valid YAML");
    let ds = docs
        .iter()
        .find(|d| d["kind"].as_str() == Some("DaemonSet"))
        .expect("a DaemonSet");
    assert_eq!(ds["apiVersion"].as_str(), Some("apps/v1"));
    let pod = at(ds, "spec.template.spec");
    assert_eq!(pod["hostPID"].as_bool(), Some(true));
    let c = at(pod, "containers.0");
    let sc = &c["securityContext"];
    assert_eq!(sc["privileged"].as_bool(), Some(false));
    assert_eq!(sc["allowPrivilegeEscalation"].as_bool(), Some(false));
    assert_eq!(sc["readOnlyRootFilesystem"].as_bool(), Some(true));
    let caps = |k: &str| -> Vec<&str> {
        sc["capabilities"][k]
            .as_vec()
            .expect("a list")
            .iter()
            .filter_map(Yaml::as_str)
            .collect()
    };
    assert_eq!(caps("drop"), ["ALL"]);
    assert_eq!(
        caps("add"),
        [
            "BPF",
            "PERFMON",
            "SYS_RESOURCE",
            "DAC_READ_SEARCH",
            "SYS_PTRACE",
            "SYS_ADMIN",
            "NET_ADMIN"
        ]
    );
    for (k, want) in [
        ("requests.cpu", "100m"),
        ("requests.memory", "128Mi"),
        ("limits.cpu", "500m"),
        ("limits.memory", "1Gi"),
    ] {
        assert_eq!(at(&c["resources"], k).as_str(), Some(want), "{k}");
    }
    // The host paths: BTF and tracefs read-only, the state on the node.
    let volumes = pod["volumes"].as_vec().expect("volumes");
    let host = |name: &str| -> Option<&str> {
        volumes
            .iter()
            .find(|v| v["name"].as_str() == Some(name))
            .and_then(|v| v["hostPath"]["path"].as_str())
    };
    assert_eq!(host("btf"), Some("/sys/kernel/btf"));
    assert_eq!(host("tracing"), Some("/sys/kernel/tracing"));
    assert_eq!(host("state"), Some("/var/lib/osprey"));
    let mounts = c["volumeMounts"].as_vec().expect("volumeMounts");
    let mount = |name: &str| {
        mounts
            .iter()
            .find(|m| m["name"].as_str() == Some(name))
            .unwrap_or_else(|| panic!("no mount {name}"))
    };
    for ro in ["btf", "tracing"] {
        assert_eq!(mount(ro)["readOnly"].as_bool(), Some(true), "{ro}");
    }
    assert_eq!(
        mount("state")["mountPath"].as_str(),
        Some("/var/lib/osprey")
    );
    // Every writable path of a read-only root is a volume.
    let args: Vec<&str> = c["args"]
        .as_vec()
        .expect("args")
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    for (flag, vol) in [
        ("--database_path=/var/lib/osprey/", "state"),
        ("--logger_path=/var/log/osprey", "logs"),
        ("--extensions_socket=/run/osprey/", "run"),
    ] {
        assert!(
            args.iter().any(|a| a.starts_with(flag)),
            "{flag} in {args:?}"
        );
        let dir = flag.split('=').nth(1).unwrap().trim_end_matches('/');
        let m = mount(vol)["mountPath"].as_str().unwrap_or("");
        assert!(
            dir.starts_with(m),
            "{flag} is not on the {vol} volume ({m})"
        );
    }
    let docker = std::fs::read_to_string(root.join("Dockerfile")).expect("Dockerfile");
    assert!(docker.contains("COPY target/package/osprey_"), "{docker}");
    assert!(
        docker.contains("ENTRYPOINT [\"/usr/bin/osprey\"]"),
        "{docker}"
    );
}
