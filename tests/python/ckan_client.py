#!/usr/bin/env python3
"""Drives the real `ckanapi` client (from PyPI) against a running yiwang node over mTLS
and prints what it got as one JSON object, for tests/tests/discovery.rs to check.

Usage: ckan_client.py BASE_URL CA CERT KEY
"""
import json
import sys

import ckanapi
import requests


def main():
    base, ca, cert, key = sys.argv[1:5]
    session = requests.Session()
    session.verify = ca
    session.cert = (cert, key)
    # Environment settings (REQUESTS_CA_BUNDLE, proxies) would override the CA above.
    session.trust_env = False
    out = {}
    # POST (ckanapi's default) and GET-only clients.
    for mode, get_only in (("post", False), ("get", True)):
        ckan = ckanapi.RemoteCKAN(base, session=session, get_only=get_only,
                                  user_agent="yiwang-test")
        found = ckan.action.package_search(
            q="危险化学品", fq="organization:320600-YJJ", rows=5,
            **{"facet.field": json.dumps(["organization", "share_type", "groups"])})
        out[mode] = {
            "count": found["count"],
            "ids": [p["id"] for p in found["results"]],
            "owner_orgs": sorted({p["owner_org"] for p in found["results"]}),
            "facet_orgs": found["facets"].get("organization", {}),
            "search_facets_share_type": found["search_facets"]["share_type"]["items"],
        }
    ckan = ckanapi.RemoteCKAN(base, session=session, user_agent="yiwang-test")
    pkg = ckan.action.package_show(id="320600-YJJ-00001")
    out["package"] = {
        "title": pkg["title"],
        "owner_org": pkg["owner_org"],
        "organization_title": pkg["organization"]["title"],
        "resource_url": pkg["resources"][0]["url"],
        "extras": {e["key"]: e["value"] for e in pkg["extras"]},
        "state": pkg["state"],
    }
    names = ckan.action.package_list(limit=50, offset=0)
    out["package_list"] = {"len": len(names), "first": names[:3]}
    orgs = ckan.action.organization_list(all_fields=True, sort="package_count desc")
    out["organizations"] = {
        "len": len(orgs),
        "top": [(o["name"], o["title"], o["package_count"]) for o in orgs[:3]],
    }
    names = ckan.action.organization_list()
    out["organization_names"] = len(names)
    org = ckan.action.organization_show(id="320600-YJJ", include_datasets=True)
    out["organization"] = {
        "title": org["title"],
        "package_count": org["package_count"],
        "packages": len(org["packages"]),
    }
    # Paging with start/rows is disjoint.
    p1 = ckan.action.package_search(q="信息", rows=10, start=0)
    p2 = ckan.action.package_search(q="信息", rows=10, start=10)
    out["pages_disjoint"] = not ({p["id"] for p in p1["results"]} & {p["id"] for p in p2["results"]})
    out["page_sizes"] = [len(p1["results"]), len(p2["results"])]
    # Errors map onto ckanapi's exceptions.
    errors = {}
    for name, call in (
        ("missing_package", lambda: ckan.action.package_show(id="NO-SUCH-DATASET")),
        ("missing_org", lambda: ckan.action.organization_show(id="NO-SUCH-DEPT")),
        ("no_id", lambda: ckan.action.package_show()),
        ("bad_fq", lambda: ckan.action.package_search(fq="res_format:CSV")),
        ("bad_sort", lambda: ckan.action.package_search(sort="title_string asc")),
        ("bad_rows", lambda: ckan.action.package_search(rows="many")),
    ):
        try:
            call()
            errors[name] = "no error"
        except ckanapi.NotFound as e:
            errors[name] = ["NotFound", str(e)]
        except ckanapi.ValidationError as e:
            errors[name] = ["ValidationError", e.error_dict]
        except ckanapi.SearchQueryError as e:
            errors[name] = ["SearchQueryError", str(e)]
        except ckanapi.CKANAPIError as e:
            errors[name] = ["CKANAPIError", str(e)]
    out["errors"] = errors
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
