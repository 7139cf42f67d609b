"""The office's other servers for the gateway tests: a private PostgreSQL and nginx with TLS.

Both are Debian's own packages (``.ci/install`` installs ``postgresql``, ``nginx-light``), each
started in a temp folder on free loopback ports and stopped at the end; nothing system-wide is
touched. PostgreSQL refuses to run as root, so as root the cluster belongs to Debian's
``postgres`` user.
"""

from __future__ import annotations

import datetime
import os
import shutil
import ssl
import subprocess
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.orthanc import free_port


def _pg_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


class PostgresCluster:
    """A throw-away PostgreSQL cluster listening on 127.0.0.1 only (trust auth, loopback)."""

    def __init__(self, folder: Path) -> None:
        bin_dir = _pg_bin()
        if bin_dir is None:
            pytest.skip("PostgreSQL is not installed (apt-get install postgresql; "
                        ".ci/install does)")
        self.bin = bin_dir
        self.folder = folder
        self.data = folder / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/medpass"
        self._as: list[str] = []
        if os.geteuid() == 0:
            self._as = ["runuser", "-u", "postgres", "--"]
            folder.mkdir(parents=True, exist_ok=True)
            shutil.chown(folder, "postgres", "postgres")
            # The test's temp tree is root's: let postgres reach its own folder.
            for parent in folder.parents:
                if parent == Path("/tmp") or parent == Path("/"):
                    break
                parent.chmod(parent.stat().st_mode | 0o011)

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as, *args], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        """initdb, start, create the database."""
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
                  "--auth=trust", "-E", "UTF8", "--locale=C")
        options = (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c max_connections=60")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options,
                  "-l", str(self.folder / "postgres.log"), "-w", "start")
        self._run(str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                  "-U", "postgres", "medpass")

    def stop(self) -> None:
        """Stop the cluster at once."""
        subprocess.run([*self._as, str(self.bin / "pg_ctl"), "-D", str(self.data), "-m",
                        "immediate", "stop"], capture_output=True, timeout=60, check=False)


def self_signed(folder: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A certificate and key for ``host`` (the office's real one comes from its CA)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "medpass-gateway-test")])
    now = datetime.datetime.now(datetime.UTC)
    import ipaddress
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(
                ipaddress.ip_address(host))]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "gateway.crt", folder / "gateway.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


NGINX_PROXY = """
proxy_pass http://orthanc;
proxy_http_version 1.1;
proxy_set_header Connection "";
proxy_set_header Host $host;
proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
proxy_set_header X-Forwarded-Proto https;
proxy_next_upstream error timeout;
proxy_connect_timeout 2s;
proxy_buffering off;
"""

NGINX_SITE = """
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 512; }}
http {{
  access_log off;
  client_body_temp_path {folder}/body;
  proxy_temp_path {folder}/proxy;
  fastcgi_temp_path {folder}/fastcgi;
  uwsgi_temp_path {folder}/uwsgi;
  scgi_temp_path {folder}/scgi;
  upstream orthanc {{
{servers}
    keepalive 16;
  }}
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    client_max_body_size 4g;
    # Phones and kiosks: the gateway's own answers pass as they are.
    location /s/ {{ include {folder}/proxy.conf; }}
    location /kiosk/ {{ include {folder}/proxy.conf; }}
    # Everything else is the office's: a refusal asks the browser for the admin credentials
    # (Orthanc's filter can only say 403).
    location / {{
      include {folder}/proxy.conf;
      proxy_intercept_errors on;
      error_page 403 = @office_login;
    }}
    location @office_login {{
      add_header WWW-Authenticate 'Basic realm="MedPass gateway (office)"' always;
      return 401;
    }}
  }}
}}
"""


class Nginx:
    """Debian's nginx terminating TLS in front of Orthanc processes (the office's set-up)."""

    def __init__(self, folder: Path, upstream_ports: list[int]) -> None:
        if not shutil.which("nginx") and not Path("/usr/sbin/nginx").exists():
            pytest.skip("nginx is not installed (apt-get install nginx-light; .ci/install does)")
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.cert, key = self_signed(folder)
        servers = "\n".join(f"    server 127.0.0.1:{p} max_fails=1 fail_timeout=30s;"
                            for p in upstream_ports)
        (folder / "proxy.conf").write_text(NGINX_PROXY, encoding="utf-8")
        self.conf = folder / "nginx.conf"
        self.conf.write_text(NGINX_SITE.format(folder=folder, servers=servers, port=self.port,
                                               cert=self.cert, key=key), encoding="utf-8")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start nginx in the foreground and wait for its port."""
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        self.proc = subprocess.Popen([binary, "-c", str(self.conf), "-p", str(self.folder),
                                      "-g", "daemon off;"], stdout=subprocess.DEVNULL,
                                     stderr=open(self.folder / "stderr.log", "wb"))  # noqa: SIM115
        import socket
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError((self.folder / "stderr.log").read_text())
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not listen in time")

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts this nginx's certificate (and nothing else)."""
        return ssl.create_default_context(cafile=str(self.cert))

    def stop(self) -> None:
        """Stop nginx."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None
