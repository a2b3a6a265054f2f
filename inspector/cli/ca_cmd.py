"""`ca`: where the proxy's CA certificate is, and how to trust it."""

from __future__ import annotations

from pathlib import Path

import click

from inspector.cli.app import App, pass_app


@click.command()
@click.option("--confdir", type=click.Path(path_type=Path), default=None, help="mitmproxy configuration directory.")
@click.option("--path", "path_only", is_flag=True, help="Print only the certificate's path.")
@pass_app
def ca(app: App, confdir: Path | None, path_only: bool) -> None:
    """Where the proxy's CA certificate is, and how to trust it."""
    from mitmproxy.certs import CertStore

    confdir = (confdir or Path("~/.mitmproxy")).expanduser()
    CertStore.from_store(str(confdir), "mitmproxy", 2048)  # creates the CA on first use
    cert = confdir / "mitmproxy-ca-cert.pem"
    if path_only:
        app.echo(str(cert))
        return
    app.echo(f"CA certificate: {cert}\n")
    app.echo(CA_HELP.format(cert=cert))


CA_HELP = """\
Trust it only where you need it (see docs/routing.md for details):
  one command        telemetry-inspector exec -- CMD ...   (sets everything below for CMD)
  Python (requests)  REQUESTS_CA_BUNDLE={cert}
  Python (ssl/httpx) SSL_CERT_FILE={cert}
  Node.js            NODE_EXTRA_CA_CERTS={cert}
  curl               curl --cacert {cert} ...   or CURL_CA_BUNDLE={cert}
  Debian/Ubuntu      sudo cp {cert} /usr/local/share/ca-certificates/telemetry-inspector.crt
                     && sudo update-ca-certificates
  macOS              sudo security add-trusted-cert -d -p ssl -p basic \\
                       -k /Library/Keychains/System.keychain {cert}
  Firefox            Settings → Privacy & Security → Certificates → View Certificates → Import
  Chrome/Chromium    Settings → Privacy and security → Security → Manage certificates → Import
  Docker             mount it and set the variables above, or copy it into the image's CA store
The private key beside it ({cert}'s directory, mitmproxy-ca.pem) lets anyone who has it
read your traffic: keep it private, and remove the CA from system stores when done."""
