"""Run a worker pool as an unprivileged user, for tests/test_sandbox.py: the workers then sandbox
themselves in a user namespace (the path a service user or a clerk running `cdr` takes).

Started as root with a JSON request on stdin ({"uid", "gid", "env", "jobs": {name: [src, out_dir]}}),
it makes this interpreter reachable for that user in a mount namespace of its own (it may live
under /root), drops to the user for good and prints {"uid", "isolation", "results"} as JSON.
"""
from __future__ import annotations

import json
import os
import sys


def main() -> None:
    req = json.load(sys.stdin)
    from cdr.sandbox import _package_paths, _python_dirs, namespaces

    namespaces.unshare(root=True)
    namespaces.expose(sorted(_python_dirs() | _package_paths(["cdr", "tests"])), req["uid"], req["gid"])
    namespaces.drop_to(req["uid"], req["gid"])
    from cdr.policy import load_policy
    from cdr.worker import Job, WorkerPool

    policy = load_policy("default").to_dict()
    results = {}
    with WorkerPool(1, env=req["env"]) as pool:
        isolation = pool.check()
        for name, (src, out) in req["jobs"].items():
            results[name] = pool.run(Job(src, name, out, policy)).to_dict()
    print(json.dumps({"uid": os.getuid(), "isolation": isolation, "results": results}))


if __name__ == "__main__":
    main()
