#!/usr/bin/env python3
"""Turns the StatefulSets of rendered Kubernetes manifests into Pods for `podman kube play`.

    pods_from_statefulsets.py RENDERED.yaml OUT_DIR VOLUME_ROOT IMAGE

For each StatefulSet in RENDERED.yaml (`kubectl kustomize deploy/kubernetes/base`), writes
OUT_DIR/<name>-0.yaml: a Pod named as the StatefulSet's first pod, whose spec is the pod
template's unchanged (containers, commands, arguments, env, probes, security contexts, volume
mounts) except for what only a Kubernetes cluster provides, replaced by host directories under
VOLUME_ROOT/<pod>/<volume> that the test fills as the cluster would:
  - configMap, secret, csi (cert-manager's certificates) volumes and the volumeClaimTemplates;
  - the containers' `ports` (names only, nothing published; podman would map them);
  - the image: IMAGE (the image under test, as an overlay's `images:` would set it);
  - the Services' DNS names (<service>.<namespace>.svc) and the played pods' own
    (<pod>.<serviceName>.<namespace>.svc, as role nodes name the brokers), given to every pod
    as hostAliases for 127.0.0.1, with hostNetwork (the pods share the network namespace podman runs in: one
    of the test's own, see kubernetes_pods_test.sh).
Prints one line per pod, "<pod> <container> <volume>=<kind> ...", so the test knows what to
fill; writes OUT_DIR/<pod>.probe, the readiness probe's command (an argument a line), and
OUT_DIR/service-names, the Services' DNS names (comma-separated) for the pods' certificates.
"""

import os
import sys

import yaml


def main(rendered, out_dir, volume_root, image):
    with open(rendered) as f:
        documents = [d for d in yaml.safe_load_all(f) if d]
    services = [
        f"{d['metadata']['name']}.{d['metadata'].get('namespace', 'default')}.svc"
        for d in documents
        if d["kind"] == "Service"
    ]
    statefulsets = [d for d in documents if d["kind"] == "StatefulSet"]
    if not statefulsets:
        sys.exit("no StatefulSet in " + rendered)
    hostnames = sorted(
        set(services)
        | {
            f"{s['metadata']['name']}-0.{s['spec']['serviceName']}."
            f"{s['metadata'].get('namespace', 'default')}.svc"
            for s in statefulsets
        }
    )
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "service-names"), "w") as f:
        f.write(",".join(sorted(set(services))) + "\n")
    for sts in statefulsets:
        pod_name = sts["metadata"]["name"] + "-0"
        template = sts["spec"]["template"]
        spec = dict(template["spec"])
        for container in spec["containers"]:
            container["image"] = image
            # containerPort only names the port (no hostPort here); podman would turn it into
            # a port mapping, which its ns: networking refuses.
            container.pop("ports", None)
        kinds = {}
        volumes = []
        for volume in spec.get("volumes", []):
            kind = next(k for k in volume if k != "name")
            kinds[volume["name"]] = kind
            volumes.append(host_path(volume_root, pod_name, volume["name"]))
        for claim in sts["spec"].get("volumeClaimTemplates", []):
            name = claim["metadata"]["name"]
            kinds[name] = "persistentVolumeClaim"
            volumes.append(host_path(volume_root, pod_name, name))
        spec["volumes"] = volumes
        spec["hostAliases"] = [{"ip": "127.0.0.1", "hostnames": hostnames}]
        spec["restartPolicy"] = "Never"
        # The pods share the network namespace podman runs in (kubernetes_pods_test.sh runs it
        # in one of its own), as a cluster network would join them.
        spec["hostNetwork"] = True
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": pod_name, "labels": template["metadata"].get("labels", {})},
            "spec": spec,
        }
        with open(os.path.join(out_dir, pod_name + ".yaml"), "w") as f:
            yaml.safe_dump(pod, f, sort_keys=False)
        container = spec["containers"][0]
        with open(os.path.join(out_dir, pod_name + ".probe"), "w") as f:
            f.write("\n".join(container["readinessProbe"]["exec"]["command"]) + "\n")
        print(pod_name, container["name"], " ".join(f"{n}={k}" for n, k in kinds.items()))


def host_path(volume_root, pod_name, volume_name):
    return {
        "name": volume_name,
        "hostPath": {"path": os.path.join(volume_root, pod_name, volume_name), "type": "Directory"},
    }


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    main(*sys.argv[1:])
