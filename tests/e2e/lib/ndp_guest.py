# SPDX-License-Identifier: MIT
"""Pieces for guests that run the virtio_ndp kernel driver (kernel/virtio_ndp):
build the module for the guest's kernel, ext4 images with BPF-KV database
files (laid out contiguously or fragmented on purpose), the guest tools and
programs to put into the initramfs, one rosenbridged serving several disks,
and a shell library for the guest (/lib/ndp.sh: load the modules, hand
disks to virtio_ndp by size, mount).

Used by tests/e2e/test_guest_ndp_driver.py, test_guest_ndp_files.py,
bench/guest/run.py and scripts/demo.py.
"""
import os
import shutil
import stat
import subprocess
import sys
import time

LIB_DIR = os.path.dirname(os.path.abspath(__file__))
E2E_DIR = os.path.dirname(LIB_DIR)
ROOT = os.path.dirname(os.path.dirname(E2E_DIR))
sys.path.insert(0, LIB_DIR)
sys.path.insert(0, E2E_DIR)
import guest  # noqa: E402
from test_guest_blk import Backend  # noqa: E402

KMOD_SRC = os.path.join(ROOT, "kernel", "virtio_ndp")
FS_MODULES = ["crc16", "mbcache", "jbd2", "crc32c_generic", "ext4"]
PROGS = ("bpfkv_xrp_lookup", "bpfkv_xrp_get", "bpfkv_xrp_range", "bpfkv_get", "bpfkv_range")
GUEST_ENV = "env LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu:/usr/lib64"

# /lib/ndp.sh in the guest.
GUEST_LIB = r"""# virtio_ndp helpers for guest test scripts (tests/e2e/lib/ndp_guest.py)
RIO="%(env)s /bin/rosen-io"
KV="%(env)s /bin/bpfkv"
BPFKV_PROGS=/lib/rosen
export RIO KV BPFKV_PROGS

# ndp_modules: ext4 and what it needs, then virtio_ndp.
ndp_modules() {
  for m in %(fs_modules)s; do insmod /lib/modules/$m.ko || return 1; done
  insmod /lib/virtio_ndp.ko
}

# ndp_by_size SECTORS: the virtioN whose disk has that many 512-byte sectors.
ndp_by_size() {
  for d in /sys/bus/virtio/devices/virtio*; do
    [ "$(cat $d/block/*/size 2>/dev/null)" = "$1" ] && { echo ${d##*/}; return 0; }
  done
  return 1
}

# ndp_bind virtioN: from virtio_blk to virtio_ndp; prints the disk's name.
ndp_bind() {
  echo $1 > /sys/bus/virtio/drivers/virtio_blk/unbind || return 1
  echo $1 > /sys/bus/virtio/drivers/virtio_ndp/bind || return 1
  for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
    n=$(ls /sys/bus/virtio/devices/$1/block 2>/dev/null)
    if [ -n "$n" ] && [ -c /dev/virtio-ndp/$n ] && [ -b /dev/$n ]; then echo $n; return 0; fi
    sleep 0.1
  done
  return 1
}
""" % dict(env=GUEST_ENV, fs_modules=" ".join(FS_MODULES))


class RosenDisks(Backend):
    """One rosenbridged, several disks: [(image, socket, extra options)]."""
    name = "rosenbridged"
    daemon = None

    def __init__(self, disks, log, queues=2):
        super().__init__(disks[0][0], disks[0][1], log)
        self.disks = disks
        self.queues = queues

    def command(self):
        cmd = [self.daemon]
        for img, sock, extra in self.disks:
            cmd += ["--disk", img, "--socket", sock, "--queues", str(self.queues)] + list(extra)
        return cmd

    def start(self, timeout=15):
        for _, sock, _ in self.disks:
            if os.path.exists(sock):
                os.unlink(sock)
        err = super().start(timeout)
        if err:
            return err
        deadline = time.monotonic() + timeout
        for _, sock, _ in self.disks:
            while True:
                try:
                    if stat.S_ISSOCK(os.stat(sock).st_mode):
                        break
                except FileNotFoundError:
                    pass
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    return "no socket %s" % sock
                time.sleep(0.05)
        return None


def kernel_release(cache):
    with open(os.path.join(cache, "versions")) as f:
        for line in f:
            if line.startswith("release "):
                return line.split()[1]
    raise guest.GuestError("the guest cache names no kernel release (rerun tests/e2e/guest/fetch-kernel.sh)")


def build_module(cache, tmp):
    """Builds virtio_ndp.ko for the guest's kernel in a copy of the sources;
    returns (path, release, compiler warnings)."""
    release = kernel_release(cache)
    kdir = "/usr/src/linux-headers-%s" % release
    if not os.path.isdir(kdir):
        raise guest.GuestError("%s missing: the guest boots %s; install linux-headers-%s "
                               "(scripts/setup.sh installs linux-headers-amd64)" % (kdir, release, release))
    src = os.path.join(tmp, "ksrc")
    shutil.rmtree(src, ignore_errors=True)
    shutil.copytree(os.path.join(ROOT, "kernel"), os.path.join(src, "kernel"),
                    ignore=shutil.ignore_patterns("*.o", "*.ko", "*.mod*", ".*.cmd", "Module.symvers",
                                                  "modules.order"))
    shutil.copytree(os.path.join(ROOT, "include"), os.path.join(src, "include"))
    mdir = os.path.join(src, "kernel", "virtio_ndp")
    p = subprocess.run(["make", "-C", mdir, "KDIR=" + kdir], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    ko = os.path.join(mdir, "virtio_ndp.ko")
    if p.returncode != 0 or not os.path.isfile(ko):
        raise guest.GuestError("building virtio_ndp.ko failed:\n" + p.stdout[-3000:])
    return ko, release, [l for l in p.stdout.splitlines() if "warning:" in l]


def guest_libs(binary):
    """--add entries for a dynamic binary's shared libraries and loader."""
    p = subprocess.run(["ldd", binary], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0 or "not a dynamic executable" in p.stdout or "statically linked" in p.stdout:
        return []
    adds = []
    for line in p.stdout.splitlines():
        words = line.split()
        if "=>" in words:
            path = words[words.index("=>") + 1]
        elif words and words[0].startswith("/"):
            path = words[0]
        else:
            continue
        if not os.path.isfile(path):
            raise guest.GuestError("%s needs %s, which is not here" % (binary, line.strip()))
        adds.append("%s:%s" % (path, path))
    return adds


def tool_adds(build, cache, ko, tmp):
    """The initramfs additions every virtio_ndp guest needs: the module, the
    ext4 modules, rosen-io and bpfkv with their libraries, the BPF-KV
    programs in /lib/rosen, blkcheck, /lib/ndp.sh."""
    rio = os.path.join(build, "app", "rosen-io", "rosen-io")
    bpfkv = os.path.join(build, "app", "bpfkv", "bpfkv")
    adds = [rio, bpfkv, ko + ":/lib/virtio_ndp.ko"]
    for b in (rio, bpfkv):
        adds += [x for x in guest_libs(b) if x not in adds]
    for p in PROGS:
        adds.append("%s:/lib/rosen/%s.o" % (os.path.join(build, "progs", p + ".o"), p))
    adds += ["%s:/lib/modules/%s.ko" % (os.path.join(cache, "modules", m + ".ko"), m) for m in FS_MODULES]
    adds.append(guest.build_static(guest.BLKCHECK_SRC, os.path.join(tmp, "blkcheck")))
    lib = os.path.join(tmp, "ndp.sh")
    with open(lib, "w") as f:
        f.write(GUEST_LIB)
    adds.append(lib + ":/lib/ndp.sh")
    return adds


def make_ext4(img, size, files, fragment=(), block_size=4096):
    """An ext4 image of `size` bytes holding files {guest name: host path}.
    Files named in `fragment` are laid out in scattered 4 KiB blocks: the
    image is first filled with filler files, every other one is deleted,
    and debugfs writes those files into the holes.  Returns the number of
    extents of each file (debugfs dump_extents)."""
    work = img + ".d"
    root = os.path.join(work, "root")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(root)
    plain = {n: p for n, p in files.items() if n not in fragment}
    for name, path in plain.items():
        dst = os.path.join(root, name)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copyfile(path, dst)
    fillers = 0
    if fragment:
        need = sum(os.path.getsize(files[n]) for n in fragment)
        fillers = need // block_size + 16
        fdir = os.path.join(root, "filler")
        os.makedirs(fdir)
        block = b"F" * block_size
        for i in range(fillers):
            with open(os.path.join(fdir, "f%d" % i), "wb") as f:
                f.write(block)
    with open(img, "wb") as f:
        f.truncate(size)
    p = subprocess.run(["mkfs.ext4", "-q", "-F", "-b", str(block_size), "-d", root, img],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        raise guest.GuestError("mkfs.ext4 -d failed: " + p.stdout)
    if fragment:
        cmds = os.path.join(work, "cmds")
        with open(cmds, "w") as f:
            for i in range(0, fillers, 2):
                f.write("rm /filler/f%d\n" % i)
            for name in fragment:
                f.write("write %s %s\n" % (files[name], name))
        p = subprocess.run(["debugfs", "-w", "-f", cmds, img], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        if p.returncode != 0:
            raise guest.GuestError("debugfs failed: " + p.stdout[-1000:])
    extents = {}
    for name in files:
        p = subprocess.run(["debugfs", "-R", "dump_extents /%s" % name, img], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
        extents[name] = sum(1 for l in p.stdout.splitlines()[1:] if l.strip())
    p = subprocess.run(["e2fsck", "-fn", img], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        raise guest.GuestError("the image made for the guest is not clean:\n" + p.stdout[-1000:])
    shutil.rmtree(work, ignore_errors=True)
    return extents


def fill_free_space(img, marker=b"ROSEN-NOT-THE-FILE!\n"):
    """Writes `marker` over every free block of an ext4 image (so a read of a
    block that is not a file's shows it)."""
    p = subprocess.run(["dumpe2fs", img], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    bs = None
    ranges = []
    for line in p.stdout.splitlines():
        if line.startswith("Block size:"):
            bs = int(line.split()[-1])
        line = line.strip()
        if line.startswith("Free blocks: ") and bs:
            for part in line[len("Free blocks: "):].split(","):
                part = part.strip()
                if not part:
                    continue
                a, _, b = part.partition("-")
                ranges.append((int(a), int(b or a)))
    if not bs:
        raise guest.GuestError("dumpe2fs gave no block size for %s" % img)
    fill = (marker * (bs // len(marker) + 1))[:bs]
    with open(img, "r+b") as f:
        for a, b in ranges:
            f.seek(a * bs)
            f.write(fill * (b - a + 1))
    return sum(b - a + 1 for a, b in ranges) * bs
