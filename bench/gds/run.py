#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""bench/gds: RosenGDS vs read-then-copy on this machine (docs/results/gds.md).

Creates a random image (--image-mib, default 512), starts rosenbridged on
it (O_DIRECT, one worker, --event; the client sleeps on its call fd too, so
CPU seconds are work done, not spinning; --gpu 0 with --target cuda), and runs
build/bench/gds/gds_bench against it: for 4 KiB..4 MiB reads and 1 and 4
client threads, RosenGDS (one GPU READ_ND through progs/gds_map.o, the
daemon reads straight into the GPU region) against the baseline (the
client reads into its own memory through the normal virtio-blk path, then
copies into its GPU buffer: memcpy for the host target, cuMemcpyHtoD for
cuda).  gds_bench checks, once per size, that a GDS read lands the disk's
bytes (GPU_SUM against a normal read).  Prints the CSV (also written to
--csv) and gds_bench's summary with the ratios gds/baseline.

Usage: bench/gds/run.py [--build build] [--target host|cuda] [--seconds 2]
                        [--sizes 4k,16k,64k,256k,1m,4m] [--threads 1,4]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--target", default="host", choices=("host", "cuda"))
    ap.add_argument("--seconds", default="2")
    ap.add_argument("--sizes", default="4k,16k,64k,256k,1m,4m")
    ap.add_argument("--threads", default="1,4")
    ap.add_argument("--image-mib", type=int, default=512)
    ap.add_argument("--csv", default=None, help="also write the CSV here")
    ap.add_argument("--workdir", default=None, help="where the image goes (default: a temporary "
                    "directory under /var/tmp: a real disk, not tmpfs)")
    args = ap.parse_args()
    daemon = os.path.join(args.build, "app/rosenbridged/rosenbridged")
    bench = os.path.join(args.build, "bench/gds/gds_bench")
    prog = os.path.join(args.build, "progs/gds_map.o")
    for p in (daemon, bench, prog):
        if not os.path.exists(p):
            sys.exit("bench/gds: %s is missing (ninja -C %s)" % (p, args.build))
    work = tempfile.mkdtemp(prefix="rb-gds-bench-", dir=args.workdir or "/var/tmp")
    img, sock, log = (os.path.join(work, n) for n in ("disk.img", "vm.sock", "daemon.log"))
    with open(img, "wb") as f:
        for _ in range(args.image_mib):
            f.write(os.urandom(1 << 20))
    cmd = [daemon, "--disk", img, "--socket", sock, "--queues", "4"]
    if args.target == "cuda":
        cmd += ["--gpu", "0"]
    cmd += ["--event"]  # CPU seconds are work done, not polling: both sides sleep when idle
    logf = open(log, "wb")
    d = subprocess.Popen(cmd, stdout=logf, stderr=logf)
    rc = 1
    try:
        for _ in range(500):
            if os.path.exists(sock):
                break
            time.sleep(0.01)
        print("# %s; rosenbridged pid %d; %s" % (" ".join(os.uname()[0:3:2]), d.pid, " ".join(cmd[1:])),
              file=sys.stderr)
        r = subprocess.run([bench, "vhost-user:" + sock, "--daemon-pid", str(d.pid), "--target", args.target,
                            "--seconds", args.seconds, "--sizes", args.sizes, "--threads", args.threads,
                            "--prog", prog], stdout=subprocess.PIPE, text=True)
        sys.stdout.write(r.stdout)
        if args.csv:
            with open(args.csv, "w") as f:
                f.write(r.stdout)
        rc = r.returncode
    finally:
        d.terminate()
        d.wait(10)
        logf.close()
        if rc:
            with open(log) as f:
                sys.stderr.write(f.read()[-2000:])
        for n in (img, log, sock):
            if os.path.exists(n):
                os.unlink(n)
        os.rmdir(work)
    return rc


if __name__ == "__main__":
    sys.exit(main())
