"""Test images only: the desk's media path, run inside the desk's own sandbox.

The disc in the (virtual) optical drive is imported straight from /dev/sr0; the (virtual) USB
stick is mounted through the mount helper service as the patient's target, the case is
exported to it (encrypted, read back and verified by the kiosk), a file is written and read
back, and the stick is unmounted and ejected. Prints one line per step (tests/image/boot-check
reads them).
"""

import json
import os
import subprocess
import sys

from kiosk.media.medium import Role
from kiosk.media.mount_policy import MOUNT_ROOT
from kiosk.media.mounter import default_backend
from kiosk.media.policy import medium_from, offer
from kiosk.media.udev_monitor import describe
from kiosk.system.disks import disks_in_use


def medium(device):
    facts = describe(device)
    kind, why = offer(facts, disks_in_use(MOUNT_ROOT))
    print(f"{device}: offered as {kind.value if kind else None} ({why})", flush=True)
    return medium_from(facts, kind)


backend = default_backend()
print(f"backend: {type(backend).__name__} as uid {os.getuid()}", flush=True)

disc = subprocess.run([f"{sys.prefix}/bin/kiosk", "import", "/dev/sr0", "--json"],
                      capture_output=True, text=True, check=False)
report = json.loads(disc.stdout)
print(f"disc import: exit {disc.returncode}, {report['instances']}", flush=True)

stick = medium("/dev/sda")
mountpoint = backend.mount(stick, Role.TARGET)
print(f"stick mounted at {mountpoint}", flush=True)
export = subprocess.run([f"{sys.prefix}/bin/kiosk", "export", report["case_id"], "--to",
                         str(mountpoint), "--json"], capture_output=True, text=True, check=False)
if export.returncode == 0:
    done = json.loads(export.stdout)
    print(f"stick export: exit 0, {done['files']} files, encrypted {done['encrypted']}, "
          f"verified {done['verified']}", flush=True)
else:
    print(f"stick export: exit {export.returncode}: {export.stderr.strip()[-300:]}", flush=True)
note = mountpoint / "MEDPASS.TXT"
note.write_text("written from the desk's sandbox\n")
print(f"stick read back: {note.read_text().strip()}", flush=True)
backend.unmount(stick.device)
print(f"stick unmounted: {not mountpoint.exists()}", flush=True)
backend.eject(stick)
print("stick ejected", flush=True)
