#!/usr/bin/env python3
"""Validates yiwang's DCAT-AP export with pySHACL.

Fetches GET /v1/catalog.ttl?page=1&per_page=N over mTLS and follows the
`Link: <...>; rel="next"` response header until it is absent (or --max-pages), parses
every page into one rdflib Graph, and validates it against the DCAT-AP SHACL shapes
(default: ../shared/data/dcat-ap/dcat-ap-3.0.0-shacl.ttl beside the repository; the
shapes are read from there, never copied into the project). --file validates local
Turtle files instead of fetching.

Prints whether the graph conforms, then the results grouped by severity and by
shape / path / constraint with counts. Exit status: 0 when no sh:Violation concerns a
mandatory property, 1 when one does (a sh:minCount constraint failed, or any constraint
of a property shape that has sh:minCount), 2 on usage, fetch or parse errors.

Needs rdflib and pyshacl (ops/eval/run.sh installs them in a venv).
"""

from __future__ import annotations

import argparse
import re
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter, defaultdict
from pathlib import Path

try:
    import rdflib
    from rdflib.namespace import NamespaceManager
    from pyshacl import validate
except ImportError as e:  # pragma: no cover
    sys.exit(f"dcat_validate: {e}; install rdflib and pyshacl (ops/eval/run.sh makes a venv with them)")

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DEFAULT_SHAPES = REPO.parent / "shared" / "data" / "dcat-ap" / "dcat-ap-3.0.0-shacl.ttl"

SH = rdflib.Namespace("http://www.w3.org/ns/shacl#")
DCAT = rdflib.Namespace("http://www.w3.org/ns/dcat#")
FOAF = rdflib.Namespace("http://xmlns.com/foaf/0.1/")
RDF = rdflib.RDF

PREFIXES = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "vcard": "http://www.w3.org/2006/vcard/ns#",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "adms": "http://www.w3.org/ns/adms#",
    "spdx": "http://spdx.org/rdf/terms#",
    "prov": "http://www.w3.org/ns/prov#",
    "locn": "http://www.w3.org/ns/locn#",
    "odrl": "http://www.w3.org/ns/odrl/2/",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "sh": "http://www.w3.org/ns/shacl#",
}

class FetchError(Exception):
    pass


_LINK_RE = re.compile(r'<([^>]*)>\s*((?:;\s*[^;,]+)*)')


def next_link(headers) -> str | None:
    """The target of rel="next" among the response's Link headers."""
    for value in headers.get_all("Link") or []:
        for m in _LINK_RE.finditer(value):
            target, params = m.group(1), m.group(2)
            for p in params.split(";"):
                k, _, v = p.strip().partition("=")
                if k.strip().lower() == "rel" and "next" in v.strip().strip('"').lower().split():
                    return target
    return None


def fetch_pages(server: str, ctx: ssl.SSLContext, per_page: int, max_pages: int | None,
                timeout: float) -> list[tuple[str, str]]:
    base = server.rstrip("/") + "/"
    url = urllib.parse.urljoin(base, f"v1/catalog.ttl?page=1&per_page={per_page}")
    pages = []
    seen = set()
    while url:
        if url in seen:
            raise FetchError(f"Link rel=next loops back to {url}")
        seen.add(url)
        t0 = time.monotonic()
        req = urllib.request.Request(url, headers={"Accept": "text/turtle"})
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=timeout) as resp:
                body = resp.read().decode("utf-8")
                nxt = next_link(resp.headers)
                ctype = resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as e:
            detail = e.read()[:500].decode("utf-8", "replace")
            raise FetchError(f"GET {url}: {e.code} {detail}")
        pages.append((url, body))
        print(f"page {len(pages)}: {len(body):,} bytes ({ctype or 'no content type'}), "
              f"{time.monotonic() - t0:.2f} s{', next' if nxt else ', last'}", file=sys.stderr)
        if max_pages and len(pages) >= max_pages:
            if nxt:
                print(f"--max-pages {max_pages}: not following {nxt}", file=sys.stderr)
            break
        url = same_origin(base, urllib.parse.urljoin(url, nxt)) if nxt else None
    return pages


def same_origin(base: str, url: str) -> str:
    """The next page on the server we were given: the export builds its links from the
    node's advertised address, which need not be the one this client reaches it by."""
    b, u = urllib.parse.urlsplit(base), urllib.parse.urlsplit(url)
    if (b.scheme, b.netloc) == (u.scheme, u.netloc):
        return url
    print(f"note: following {u.path}?{u.query} on {b.netloc} (the link names {u.netloc})", file=sys.stderr)
    return urllib.parse.urlunsplit((b.scheme, b.netloc, u.path, u.query, ""))


def display_ns() -> NamespaceManager:
    nm = NamespaceManager(rdflib.Graph(), bind_namespaces="none")
    for p, ns in PREFIXES.items():
        nm.bind(p, ns, override=True, replace=True)
    return nm


def short(term, nm: NamespaceManager) -> str:
    if term is None:
        return "-"
    if isinstance(term, rdflib.BNode):
        return "[blank node]"
    if isinstance(term, rdflib.URIRef):
        try:
            return term.n3(nm)
        except Exception:
            return f"<{term}>"
    return str(term)


def shape_label(shape, shapes: rdflib.Graph, nm: NamespaceManager) -> str:
    """DCAT-AP names property shapes '<...>#dcat:DatasetShape/<hash>': show the node shape."""
    if isinstance(shape, rdflib.URIRef) and "#" in shape:
        frag = shape.split("#", 1)[1]
        return frag.split("/", 1)[0]
    if isinstance(shape, rdflib.BNode):
        parent = shapes.value(predicate=SH.property, object=shape)
        if parent is not None:
            return shape_label(parent, shapes, nm)
    return short(shape, nm)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--server", default="https://127.0.0.1:8443", help="yiwang API base URL (default: %(default)s)")
    p.add_argument("--cluster-dir", type=Path,
                   help="directory of ops/cluster-local.sh: --cert/--key/--ca default to DIR/certs/admin.pem, admin.key, ca.pem")
    p.add_argument("--cert", help="client certificate (PEM)")
    p.add_argument("--key", help="its private key (PEM)")
    p.add_argument("--ca", help="CA certificate (PEM) that signed the server")
    p.add_argument("--file", type=Path, action="append", default=[],
                   help="validate this local Turtle file instead of fetching (repeatable)")
    p.add_argument("--per-page", type=int, default=1000,
                   help="datasets per export page, at most 10000 (default: %(default)s, the server's)")
    p.add_argument("--max-pages", type=int, help="stop after this many pages")
    p.add_argument("--shapes", type=Path, default=DEFAULT_SHAPES, help="SHACL shapes (default: %(default)s)")
    p.add_argument("--inference", choices=["none", "rdfs", "owlrl", "both"], default="none",
                   help="pySHACL inference on the data graph (default: %(default)s)")
    p.add_argument("--save", type=Path, help="write the merged data graph as Turtle here")
    p.add_argument("--timeout", type=float, default=300, help="seconds per page request (default: %(default)s)")
    p.add_argument("-v", "--verbose", action="store_true", help="show example focus nodes and messages per group")
    a = p.parse_args(argv)
    if a.cluster_dir:
        a.cert = a.cert or str(a.cluster_dir / "certs" / "admin.pem")
        a.key = a.key or str(a.cluster_dir / "certs" / "admin.key")
        a.ca = a.ca or str(a.cluster_dir / "certs" / "ca.pem")
    if a.per_page < 1 or (a.max_pages is not None and a.max_pages < 1):
        p.error("--per-page and --max-pages must be positive")
    if not a.shapes.is_file():
        p.error(f"--shapes: no such file {a.shapes}")

    data = rdflib.Graph()
    try:
        if a.file:
            for f in a.file:
                data.parse(f, format="turtle")
            source = ", ".join(str(f) for f in a.file)
            npages = len(a.file)
        else:
            for label, path in (("--cert", a.cert), ("--key", a.key), ("--ca", a.ca)):
                if not path or not Path(path).is_file():
                    p.error(f"{label}: no such file '{path}' (give --cluster-dir, --cert/--key/--ca, or --file)")
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.load_cert_chain(a.cert, a.key)
            ctx.load_verify_locations(a.ca)
            pages = fetch_pages(a.server, ctx, a.per_page, a.max_pages, a.timeout)
            for url, body in pages:
                data.parse(data=body, format="turtle", publicID=url)
            source = a.server
            npages = len(pages)
    except SystemExit:
        raise
    except (FetchError, OSError, ssl.SSLError) as e:
        print(f"dcat_validate: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # rdflib parse errors have no common base class
        print(f"dcat_validate: cannot parse the Turtle: {type(e).__name__}: {e}", file=sys.stderr)
        return 2

    if a.save:
        a.save.write_text(data.serialize(format="turtle"))

    nm = display_ns()
    kinds = Counter()
    for cls in (DCAT.Catalog, DCAT.Dataset, DCAT.Distribution, DCAT.DataService, FOAF.Agent):
        kinds[short(cls, nm)] = len(set(data.subjects(RDF.type, cls)))
    print(f"source: {source} ({npages} {'files' if a.file else 'pages'}), {len(data):,} triples; "
          + ", ".join(f"{k} {n}" for k, n in kinds.items()))

    shapes = rdflib.Graph().parse(a.shapes, format="turtle")
    t0 = time.monotonic()
    conforms, results, _text = validate(
        data,
        shacl_graph=shapes,
        inference=a.inference,
        abort_on_first=False,
        allow_infos=True,
        allow_warnings=True,
        meta_shacl=False,
        advanced=True,
    )
    print(f"shapes: {a.shapes.name}; inference: {a.inference}; validated in {time.monotonic() - t0:.1f} s")
    print(f"conforms: {conforms}")

    mandatory_shapes = set(shapes.subjects(SH.minCount, None))
    groups: dict[str, Counter] = defaultdict(Counter)
    examples: dict[tuple, list] = defaultdict(list)
    severities = Counter()
    mandatory = Counter()
    for r in results.subjects(RDF.type, SH.ValidationResult):
        sev = results.value(r, SH.resultSeverity)
        shape = results.value(r, SH.sourceShape)
        path = results.value(r, SH.resultPath)
        comp = results.value(r, SH.sourceConstraintComponent)
        sev_s = short(sev, nm).replace("sh:", "")
        comp_s = short(comp, nm).replace("sh:", "").replace("ConstraintComponent", "")
        name = shapes.value(shape, SH.name) if shape is not None else None
        path_s = short(path, nm) + (f" ({name})" if name else "")
        key = (shape_label(shape, shapes, nm), path_s, comp_s)
        severities[sev_s] += 1
        groups[sev_s][key] += 1
        if len(examples[(sev_s, key)]) < 3:
            examples[(sev_s, key)].append((results.value(r, SH.focusNode), results.value(r, SH.resultMessage)))
        if sev == SH.Violation and (comp == SH.MinCountConstraintComponent or shape in mandatory_shapes):
            mandatory[key] += 1

    if severities:
        print("results: " + ", ".join(f"{n} {s}" for s, n in severities.most_common()))
    for sev in sorted(groups, key=lambda s: ("Violation", "Warning", "Info").index(s) if s in ("Violation", "Warning", "Info") else 9):
        print(f"\n{sev}:")
        print(f"  {'count':>7}  {'shape':<26} {'path':<40} constraint")
        for key, n in groups[sev].most_common():
            shape_s, path_s, comp_s = key
            print(f"  {n:>7}  {shape_s:<26} {path_s:<40} {comp_s}")
            if a.verbose:
                for focus, msg in examples[(sev, key)]:
                    print(f"             e.g. {short(focus, nm)}: {msg}")
    if mandatory:
        print(f"\nFAIL: {sum(mandatory.values())} violations of mandatory DCAT-AP properties (sh:minCount):")
        for (shape_s, path_s, comp_s), n in mandatory.most_common():
            print(f"  {n:>7}  {shape_s} {path_s} ({comp_s})")
        return 1
    print("\nno violation of a mandatory property")
    return 0


if __name__ == "__main__":
    sys.exit(main())
