#!/usr/bin/env python3
"""Parses yiwang's DCAT-AP export with a real RDF parser (rdflib, from PyPI) and prints
what a DCAT-AP validator checks first, as one JSON object, for tests/tests/discovery.rs.

Usage: dcat_parse.py FORMAT FILE...   (FORMAT: turtle or json-ld; files are pages)
"""
import json
import sys

from rdflib import Graph, Literal, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, RDF


def main():
    fmt, files = sys.argv[1], sys.argv[2:]
    g = Graph()
    for f in files:
        g.parse(f, format=fmt)
    datasets = set(g.subjects(RDF.type, DCAT.Dataset))
    catalogs = set(g.subjects(RDF.type, DCAT.Catalog))
    distributions = set(g.subjects(RDF.type, DCAT.Distribution))
    agents = set(g.subjects(RDF.type, FOAF.Agent))

    def lacking(nodes, prop):
        return sorted(str(n) for n in nodes if (n, prop, None) not in g)

    def zh_literal(node, prop):
        return any(isinstance(o, Literal) and o.language == "zh" for o in g.objects(node, prop))

    some = sorted(datasets)[0] if datasets else None
    out = {
        "triples": len(g),
        "catalogs": len(catalogs),
        "datasets": len(datasets),
        "catalog_lacks": {
            p: [str(c) for c in catalogs if (c, prop, None) not in g]
            for p, prop in (("title", DCTERMS.title), ("description", DCTERMS.description),
                            ("publisher", DCTERMS.publisher))
        },
        "datasets_linked_from_catalog": len(set(g.objects(None, DCAT.dataset)) & datasets),
        "datasets_without_title": lacking(datasets, DCTERMS.title),
        "datasets_without_description": lacking(datasets, DCTERMS.description),
        "datasets_without_distribution": lacking(datasets, DCAT.distribution),
        "datasets_without_publisher": lacking(datasets, DCTERMS.publisher),
        "distributions": len(distributions),
        "distributions_without_access_url": lacking(distributions, DCAT.accessURL),
        "agents": len(agents),
        "agents_without_name": lacking(agents, FOAF.name),
        "publishers_not_agents": sorted(
            str(p) for p in set(g.objects(None, DCTERMS.publisher)) if p not in agents),
        "titles_tagged_zh": all(zh_literal(d, DCTERMS.title) for d in datasets),
        "sample": None if some is None else {
            "iri": str(some),
            "identifier": str(g.value(some, DCTERMS.identifier)),
            "title": str(g.value(some, DCTERMS.title)),
            "access_url": str(g.value(g.value(some, DCAT.distribution), DCAT.accessURL)),
            "access_rights": str(g.value(some, DCTERMS.accessRights)),
            "issued_datatype": str(getattr(g.value(some, DCTERMS.issued), "datatype", "")),
        },
    }
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
