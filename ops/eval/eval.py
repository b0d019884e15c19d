#!/usr/bin/env python3
"""Search-quality evaluation of yiwang's catalog search against a SQLite FTS5 baseline.

Loads a real Chinese open-data catalog (default ../shared/data/cn-open-catalog.jsonl.gz
beside the repository) into a running yiwang through the bulk API over mTLS, then runs
the judged queries of queries.json through GET /v1/search and through SQLite FTS5
(tokenize='trigram', bm25, title weighted 3:1) over the same titles and summaries, and
prints precision@10, recall@50 and MRR per system, overall and per query kind.

Relevance is decided by each query's own rule, applied to every loaded catalog entry,
so recall has a denominator (see README.md beside this file).

Modes:
  (default)         load the catalog (unless --skip-load), then evaluate yiwang and FTS5
  --baseline-only   no server: evaluate the FTS5 baseline only
  --dry-run DIR     no server: write departments.ndjson and datasets.ndjson to DIR and
                    check every line against the server's validation rules
  --check-queries   no server: print how many entries each query's rule judges relevant

Standard library only (Python 3.11).
"""

from __future__ import annotations

import argparse
import gzip
import html
import http.client
import json
import re
import sqlite3
import ssl
import sys
import time
import unicodedata
import urllib.parse
from collections import Counter, OrderedDict, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "cn-open-catalog.jsonl.gz"
DEFAULT_QUERIES = HERE / "queries.json"

# --- limits and enums of the server (catalog/src/validate.rs, catalog/src/model.rs) ---

MAX_TITLE_CHARS = 200
MAX_SUMMARY_CHARS = 4000
MAX_KEYWORDS = 20
MAX_KEYWORD_CHARS = 50
MAX_THEME_CHARS = 50
MAX_OPEN_TYPE_CHARS = 50
MAX_DEPT_NAME_CHARS = 100
MAX_REGION_CHARS = 100
MAX_CONDITION_CHARS = 1000
FORMATS = ("table", "file", "api")
SHARE_TYPES = ("unconditional", "conditional", "none")
UPDATE_CYCLES = ("realtime", "daily", "weekly", "monthly", "quarterly", "yearly", "irregular")

SEARCH_LIMIT = 50  # hits asked of each system per query
SHARE_CONDITION = "按开放平台规定申请"

# Chinese names of the portals' regions (province_city in the data).
REGION_NAMES = {
    "anhui_anhui": "安徽省",
    "anhui_chizhou": "安徽省池州市",
    "anhui_suzhou": "安徽省宿州市",
    "guangxi_baise": "广西壮族自治区百色市",
    "guangxi_beihai": "广西壮族自治区北海市",
    "guangxi_chongzuo": "广西壮族自治区崇左市",
    "guangxi_fangchenggang": "广西壮族自治区防城港市",
    "guangxi_guigang": "广西壮族自治区贵港市",
    "guangxi_guilin": "广西壮族自治区桂林市",
    "guangxi_hechi": "广西壮族自治区河池市",
    "guangxi_hezhou": "广西壮族自治区贺州市",
    "guangxi_laibin": "广西壮族自治区来宾市",
    "guangxi_liuzhou": "广西壮族自治区柳州市",
    "guangxi_nanning": "广西壮族自治区南宁市",
    "guangxi_qinzhou": "广西壮族自治区钦州市",
    "guangxi_wuzhou": "广西壮族自治区梧州市",
    "guangxi_yulin": "广西壮族自治区玉林市",
    "guizhou_anshun": "贵州省安顺市",
    "guizhou_bijie": "贵州省毕节市",
    "guizhou_guiyang": "贵州省贵阳市",
    "guizhou_liupanshui": "贵州省六盘水市",
    "guizhou_qiandongnan": "贵州省黔东南苗族侗族自治州",
    "guizhou_qiannan": "贵州省黔南布依族苗族自治州",
    "guizhou_qianxinan": "贵州省黔西南布依族苗族自治州",
    "guizhou_tongren": "贵州省铜仁市",
    "guizhou_zunyi": "贵州省遵义市",
    "hainan_hainan": "海南省",
    "sichuan_aba": "四川省阿坝藏族羌族自治州",
    "sichuan_dazhou": "四川省达州市",
    "sichuan_meishan": "四川省眉山市",
    "sichuan_yibin": "四川省宜宾市",
}

# update_cycle as the portals wrote it -> UpdateCycle. 每半年 has no variant of its own:
# yearly is the nearest that does not promise more than the portal did.
UPDATE_CYCLE_MAP = {
    "实时": "realtime",
    "每日": "daily",
    "每天": "daily",
    "每周": "weekly",
    "每月": "monthly",
    "每季度": "quarterly",
    "每季": "quarterly",
    "每半年": "yearly",
    "每年": "yearly",
    "不定期": "irregular",
    "其他": "irregular",
    "自定义": "irregular",
}

API_FORMATS = {"api", "接口"}


# --- validation, mirroring catalog/src/validate.rs ---

def is_code(s: str) -> bool:
    """Department code: ASCII letter or digit first, then letters, digits and '-', 2-32."""
    return (
        2 <= len(s.encode()) <= 32
        and s.isascii()
        and s[0].isalnum()
        and all(c.isalnum() or c == "-" for c in s)
    )


def is_resource_code(s: str) -> bool:
    """Dataset id: like a department code plus '.' and '_', 2-64."""
    return (
        2 <= len(s.encode()) <= 64
        and s.isascii()
        and s[0].isalnum()
        and all(c.isalnum() or c in "-._" for c in s)
    )


def _is_control(c: str) -> bool:
    return unicodedata.category(c) == "Cc"


def text_error(field: str, value: str, max_chars: int, required: bool) -> str | None:
    if required and not value.strip():
        return f"{field}: must not be empty"
    if len(value) > max_chars:
        return f"{field}: longer than {max_chars} characters"
    if any(_is_control(c) and c != "\n" for c in value):
        return f"{field}: contains control characters"
    return None


def validate_department(d: dict) -> str | None:
    if set(d) != {"code", "name", "region"}:
        return f"unexpected keys {sorted(d)}"
    if not is_code(d["code"]):
        return f"code: '{d['code']}' is not a department code"
    return text_error("name", d["name"], MAX_DEPT_NAME_CHARS, True) or text_error(
        "region", d["region"], MAX_REGION_CHARS, True
    )


DATASET_KEYS = {
    "id", "dept", "title", "summary", "keywords", "theme", "format", "share_type",
    "share_condition", "open_type", "update_cycle", "fields", "source",
}


def validate_dataset(d: dict) -> str | None:
    """The stateless checks of validate::dataset() plus serde's shape (deny_unknown_fields)."""
    unknown = set(d) - DATASET_KEYS
    if unknown:
        return f"unknown keys {sorted(unknown)}"
    for k in ("id", "dept", "title", "theme", "format", "share_type", "update_cycle", "fields"):
        if k not in d:
            return f"{k}: missing"
    if not is_resource_code(d["id"]):
        return f"id: '{d['id']}' is not a resource code"
    if not is_code(d["dept"]):
        return f"dept: '{d['dept']}' is not a department code"
    if d["format"] not in FORMATS:
        return f"format: '{d['format']}' unknown"
    if d["share_type"] not in SHARE_TYPES:
        return f"share_type: '{d['share_type']}' unknown"
    if d["update_cycle"] not in UPDATE_CYCLES:
        return f"update_cycle: '{d['update_cycle']}' unknown"
    err = (
        text_error("title", d["title"], MAX_TITLE_CHARS, True)
        or text_error("summary", d.get("summary", ""), MAX_SUMMARY_CHARS, False)
        or text_error("theme", d["theme"], MAX_THEME_CHARS, True)
        or text_error("open_type", d.get("open_type", ""), MAX_OPEN_TYPE_CHARS, False)
    )
    if err:
        return err
    kws = d.get("keywords", [])
    if len(kws) > MAX_KEYWORDS:
        return f"keywords: more than {MAX_KEYWORDS} keywords"
    for i, k in enumerate(kws):
        err = text_error(f"keywords[{i}]", k, MAX_KEYWORD_CHARS, True)
        if err:
            return err
    cond = d.get("share_condition", "")
    err = text_error("share_condition", cond, MAX_CONDITION_CHARS, d["share_type"] != "unconditional")
    if err:
        return err
    if d["format"] == "table" and not d["fields"]:
        return "fields: a table dataset needs at least one field"
    if d["fields"]:
        return "fields: this tool never sends fields"
    return None


# --- conversion of the source catalog ---

_TAG_RE = re.compile(r"</?[A-Za-z][^<>]{0,200}>")
_WS_RE = re.compile(r"\s+")


def clean(s: str | None) -> str:
    """Plain one-line text: HTML tags and entities resolved, control characters and runs
    of whitespace replaced by one space."""
    if not s:
        return ""
    if "<" in s:
        s = _TAG_RE.sub(" ", s)
    if "&" in s:
        s = html.unescape(s)
    s = "".join(" " if _is_control(c) else c for c in s)
    return _WS_RE.sub(" ", s).strip()


def region_code(region: str, k: int) -> str:
    r = re.sub(r"[^A-Z0-9]+", "-", region.upper()).strip("-")
    if not r or len(r) > 26 or not r[0].isalnum():
        r = f"R{k:02d}"
    return r


def read_catalog(path: Path) -> list[dict]:
    opener = gzip.open if str(path).endswith(".gz") else open
    rows = []
    with opener(path, "rt", encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise SystemExit(f"{path}:{n}: not JSON: {e}")
    return rows


def theme_of(row: dict) -> str:
    for candidate in (row.get("theme"), row.get("industry")):
        if candidate:
            # industry may list several, separated by ',' or a line break ('、' is part
            # of the names, e.g. 公共管理、社会保障和社会组织)
            first = clean(re.split(r"[,，\r\n]+", candidate.strip())[0])
            if first:
                return first[:MAX_THEME_CHARS]
    return "其他"


def share_of(open_attr: str | None) -> tuple[str, str]:
    if open_attr and "有条件" in open_attr:
        return "conditional", SHARE_CONDITION
    return "unconditional", ""


def cycle_of(s: str | None) -> str:
    s = (s or "").strip()
    if s in UPDATE_CYCLE_MAP:
        return UPDATE_CYCLE_MAP[s]
    for needle, v in (("实时", "realtime"), ("日", "daily"), ("天", "daily"), ("周", "weekly"),
                      ("月", "monthly"), ("季", "quarterly"), ("年", "yearly")):
        if needle in s:
            return v
    return "irregular"


def keywords_of(tags) -> list[str]:
    out: list[str] = []
    seen = set()
    for t in tags or []:
        t = clean(t if isinstance(t, str) else str(t))
        if not t or len(t) > MAX_KEYWORD_CHARS or t in seen:
            continue
        seen.add(t)
        out.append(t)
        if len(out) == MAX_KEYWORDS:
            break
    return out


def convert(rows: list[dict], limit: int | None):
    """Departments and datasets for the first `limit` rows. Department codes are
    numbered over the whole file (sorted by region, then name), so a department keeps
    its code whatever --limit is."""
    names = sorted({(r["region"], clean(r["department"]) or "未注明部门") for r in rows})
    regions = sorted({r for r, _ in names})
    rcode = {r: region_code(r, k) for k, r in enumerate(regions, 1)}
    dept_code: dict[tuple[str, str], str] = {}
    counter: Counter = Counter()
    for region, name in names:
        counter[region] += 1
        code = f"{rcode[region]}-{counter[region]:04d}"
        assert is_code(code), code
        dept_code[(region, name)] = code

    chosen = rows[:limit] if limit else rows
    depts: "OrderedDict[str, dict]" = OrderedDict()
    datasets: list[dict] = []
    entries: list[dict] = []  # what relevance rules look at
    used_ids: set[str] = set()
    for r in chosen:
        name = clean(r["department"]) or "未注明部门"
        code = dept_code[(r["region"], name)]
        if code not in depts:
            depts[code] = {
                "code": code,
                "name": name[:MAX_DEPT_NAME_CHARS],
                "region": REGION_NAMES.get(r["region"], r["region"])[:MAX_REGION_CHARS],
            }
        rid = r["id"]
        if not is_resource_code(rid) or rid in used_ids:
            base = re.sub(r"[^A-Za-z0-9._-]", "-", rid)
            if not base[:1].isalnum():
                base = "x" + base
            base = base[:60] or "x0"
            rid, n = base, 1
            while rid in used_ids or not is_resource_code(rid):
                rid = f"{base}.{n}"
                n += 1
        used_ids.add(rid)
        share_type, condition = share_of(r.get("open_attr"))
        formats = {str(f).strip().lower() for f in (r.get("formats") or [])}
        d = {
            "id": rid,
            "dept": code,
            "title": clean(r["title"])[:MAX_TITLE_CHARS] or rid,
            "summary": clean(r.get("description"))[:MAX_SUMMARY_CHARS],
            "keywords": keywords_of(r.get("tags")),
            "theme": theme_of(r),
            "format": "api" if formats & API_FORMATS else "file",
            "share_type": share_type,
            "share_condition": condition,
            "open_type": clean(r.get("open_attr"))[:MAX_OPEN_TYPE_CHARS],
            "update_cycle": cycle_of(r.get("update_cycle")),
            "fields": [],
        }
        datasets.append(d)
        entries.append({
            "id": rid,
            "source_id": r["id"],
            "title": d["title"],
            "summary": d["summary"],
            "keywords": d["keywords"],
            "dept_name": depts[code]["name"],
        })
    return list(depts.values()), datasets, entries


# --- relevance rules ---

RULE_KEYS = {"title_any", "title_all", "text_any", "title_regex", "dept_any", "not_title_any", "any", "all"}


def check_rule(rule, where: str) -> None:
    if not isinstance(rule, dict) or not rule:
        raise SystemExit(f"{where}: a rule is a non-empty object")
    for k, v in rule.items():
        if k not in RULE_KEYS:
            raise SystemExit(f"{where}: unknown rule key '{k}' (known: {', '.join(sorted(RULE_KEYS))})")
        if k == "title_regex":
            if not isinstance(v, str):
                raise SystemExit(f"{where}: title_regex is a string")
            re.compile(v)
        elif k in ("any", "all"):
            if not isinstance(v, list) or not v:
                raise SystemExit(f"{where}: {k} is a non-empty list of rules")
            for i, sub in enumerate(v):
                check_rule(sub, f"{where}.{k}[{i}]")
        elif not isinstance(v, list) or not v or not all(isinstance(s, str) and s for s in v):
            raise SystemExit(f"{where}: {k} is a non-empty list of strings")


def matches(rule: dict, e: dict) -> bool:
    """Every key of the rule must hold (AND); `any` holds when one of its rules does,
    `all` when each of them does (for two OR-groups that must both match)."""
    title = e["title"].casefold()
    for k, v in rule.items():
        if k == "title_any":
            ok = any(s.casefold() in title for s in v)
        elif k == "title_all":
            ok = all(s.casefold() in title for s in v)
        elif k == "not_title_any":
            ok = not any(s.casefold() in title for s in v)
        elif k == "title_regex":
            ok = re.search(v, e["title"]) is not None
        elif k == "text_any":
            text = "\n".join([e["title"], e["summary"], *e["keywords"]]).casefold()
            ok = any(s.casefold() in text for s in v)
        elif k == "dept_any":
            ok = any(s.casefold() in e["dept_name"].casefold() for s in v)
        elif k == "any":
            ok = any(matches(sub, e) for sub in v)
        elif k == "all":
            ok = all(matches(sub, e) for sub in v)
        else:  # check_rule refused it already
            raise AssertionError(k)
        if not ok:
            return False
    return True


def load_queries(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    queries = doc["queries"] if isinstance(doc, dict) else doc
    seen = set()
    for i, q in enumerate(queries):
        where = f"{path.name}[{i}]"
        for k in ("q", "kind", "rule"):
            if k not in q:
                raise SystemExit(f"{where}: missing '{k}'")
        if not q["q"].strip():
            raise SystemExit(f"{where}: empty q")
        if q["q"] in seen:
            raise SystemExit(f"{where}: duplicate q '{q['q']}'")
        seen.add(q["q"])
        check_rule(q["rule"], f"{where} ({q['q']})")
    return queries


# --- the FTS5 baseline ---

class Fts5Baseline:
    """SQLite FTS5, trigram tokenizer, bm25 with the title weighted 3 to the summary's 1.
    Whitespace-separated terms are ORed, each quoted as an FTS5 string. A trigram index
    cannot match a term shorter than 3 characters, so a query with such a term is
    answered by LIKE '%term%' on title and summary instead, ranked by a simple score
    (3 per term in the title, 1 per term in the summary; then shorter titles first)."""

    TITLE_WEIGHT = 3.0
    SUMMARY_WEIGHT = 1.0

    def __init__(self, entries: list[dict]):
        self.ids = [e["id"] for e in entries]
        self.db = sqlite3.connect(":memory:")
        self.db.execute("CREATE VIRTUAL TABLE docs USING fts5(title, summary, tokenize='trigram')")
        self.db.executemany(
            "INSERT INTO docs(rowid, title, summary) VALUES (?, ?, ?)",
            ((i, e["title"], e["summary"]) for i, e in enumerate(entries)),
        )
        self.db.commit()

    @staticmethod
    def uses_like(q: str) -> bool:
        return any(len(t) < 3 for t in q.split())

    def search(self, q: str, limit: int = SEARCH_LIMIT) -> list[str]:
        terms = q.split()
        if not terms:
            return []
        if self.uses_like(q):
            score = " + ".join(
                ["(CASE WHEN title LIKE ? ESCAPE '\\' THEN 3 ELSE 0 END)"
                 " + (CASE WHEN summary LIKE ? ESCAPE '\\' THEN 1 ELSE 0 END)"] * len(terms)
            )
            params: list = []
            for t in terms:
                pat = "%" + t.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
                params += [pat, pat]
            sql = (f"SELECT rowid FROM (SELECT rowid, title, {score} AS s FROM docs) "
                   f"WHERE s > 0 ORDER BY s DESC, length(title), rowid LIMIT ?")
            rows = self.db.execute(sql, params + [limit]).fetchall()
        else:
            match = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
            rows = self.db.execute(
                "SELECT rowid FROM docs WHERE docs MATCH ? ORDER BY bm25(docs, ?, ?), rowid LIMIT ?",
                (match, self.TITLE_WEIGHT, self.SUMMARY_WEIGHT, limit),
            ).fetchall()
        return [self.ids[r[0]] for r in rows]


# --- the yiwang client ---

class Yiwang:
    def __init__(self, server: str, cert: str, key: str, ca: str, timeout: float = 600):
        u = urllib.parse.urlsplit(server)
        if u.scheme != "https" or not u.hostname:
            raise SystemExit(f"--server must be an https URL, not '{server}'")
        self.host, self.port = u.hostname, u.port or 443
        self.base = u.path.rstrip("/")
        for label, p in (("--cert", cert), ("--key", key), ("--ca", ca)):
            if not p or not Path(p).is_file():
                raise SystemExit(f"{label}: no such file '{p}' (give --cluster-dir or --cert/--key/--ca)")
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.ctx.load_cert_chain(cert, key)
        self.ctx.load_verify_locations(ca)
        self.timeout = timeout
        self.conn: http.client.HTTPSConnection | None = None

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict | None = None) -> tuple[int, dict, bytes]:
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPSConnection(
                    self.host, self.port, context=self.ctx, timeout=self.timeout)
            try:
                self.conn.request(method, self.base + path, body=body, headers=headers or {})
                resp = self.conn.getresponse()
                data = resp.read()
                return resp.status, dict(resp.getheaders()), data
            except (http.client.RemoteDisconnected, ConnectionError, ssl.SSLError,
                    http.client.BadStatusLine) as e:
                # a kept-alive connection the server has closed (it may close after an
                # error answer without reading the body): reconnect once
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise ConnectionError(f"{method} {path}: {e}") from e
        raise AssertionError

    def json(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        status, _, data = self.request(method, path, body, headers)
        try:
            doc = json.loads(data) if data else None
        except json.JSONDecodeError:
            doc = None
        if status >= 400:
            err = doc.get("error") if isinstance(doc, dict) else None
            if isinstance(err, dict):
                code, msg = err.get("code", "?"), err.get("message", "")
            else:
                code, msg = f"http_{status}", data[:300].decode("utf-8", "replace")
            raise HttpError(status, code, msg, f"{method} {path.split('?')[0]}")
        return doc

    def search(self, q: str, limit: int = SEARCH_LIMIT) -> dict:
        return self.json("GET", "/v1/search?" + urllib.parse.urlencode({"q": q, "limit": limit}))


class HttpError(Exception):
    def __init__(self, status: int, code: str, message: str, what: str):
        super().__init__(f"{what}: {status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


def bulk_load(client: Yiwang, path: str, items: list[dict], key: str, chunk: int, what: str) -> dict:
    """POSTs items as NDJSON in chunks. Returns {'created', 'existing', 'failed': [(id, error)]}."""
    created = 0
    existing = 0
    failed: list[tuple[str, dict]] = []
    t0 = time.monotonic()
    for start in range(0, len(items), chunk):
        part = items[start:start + chunk]
        body = "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in part).encode()
        try:
            rep = client.json("POST", path, body, {"Content-Type": "application/x-ndjson"})
        except HttpError as e:
            # the whole request refused: every line failed; a refusal of the caller
            # (401/403) will not change for the next chunks, so they are not sent
            rest = items[start:] if e.status in (401, 403) else part
            for x in rest:
                failed.append((x[key], {"code": e.code, "message": f"{e.message} (whole request, {e.status})"}))
            print(f"{what}: request refused: {e}", file=sys.stderr)
            if e.status in (401, 403):
                break
            continue
        created += rep.get("created", 0)
        for res in rep.get("results", []):
            if res.get("status") == "created":
                continue
            item = part[res["line"] - 1]
            err = res.get("error") or {}
            if err.get("code") == "conflict" and "already exists" in err.get("message", ""):
                existing += 1
            else:
                failed.append((item[key], err))
        done = min(start + chunk, len(items))
        print(f"{what}: {done}/{len(items)} sent, {created} created, {existing} already there, "
              f"{len(failed)} failed ({time.monotonic() - t0:.1f} s)", file=sys.stderr)
    return {"created": created, "existing": existing, "failed": failed,
            "seconds": round(time.monotonic() - t0, 2)}


def report_failures(what: str, failed: list[tuple[str, dict]], verbose: bool) -> None:
    """Rejected lines are a result: printed on stdout, grouped by error (quoted values
    folded), with an example of each group; -v lists up to 50 lines."""
    if not failed:
        return
    print(f"{what}: {len(failed)} lines rejected by the server")
    groups: dict[tuple[str, str], list] = {}
    for ident, e in failed:
        k = (e.get("code", "?"), re.sub(r"'[^']*'", "'…'", e.get("message", "?")))
        groups.setdefault(k, []).append((ident, e))
    for (code, msg), items in sorted(groups.items(), key=lambda kv: -len(kv[1]))[:10]:
        ident, e = items[0]
        print(f"  {len(items):6d}  {code}: {msg}")
        if len(items) > 1 or msg != e.get("message"):
            print(f"          e.g. {ident}: {e.get('message')}")
    if len(groups) > 10:
        print(f"          ... and {len(groups) - 10} other kinds of error")
    if verbose:
        for ident, e in failed[:50]:
            print(f"    {ident}: {e.get('code')}: {e.get('message')}")


def wait_for_index(client: Yiwang, expected: int, timeout: float) -> int:
    """Waits until an empty-q search counts at least `expected` active datasets."""
    t0 = time.monotonic()
    said = 0.0
    while True:
        total = client.search("", 1).get("total", 0)
        waited = time.monotonic() - t0
        if total >= expected or waited > timeout:
            return total
        if waited - said >= 10 or said == 0:
            print(f"waiting for the search index: {total}/{expected}", file=sys.stderr)
            said = max(waited, 1e-9)
        time.sleep(1.0)


# --- metrics ---

def metrics(ranked: list[str], relevant: set[str]) -> dict:
    top10 = ranked[:10]
    top50 = ranked[:SEARCH_LIMIT]
    rel10 = sum(1 for i in top10 if i in relevant)
    rel50 = sum(1 for i in top50 if i in relevant)
    rr = 0.0
    for rank, i in enumerate(top50, 1):
        if i in relevant:
            rr = 1.0 / rank
            break
    n = len(relevant)
    return {
        "p10": rel10 / 10,
        "np10": rel10 / min(10, n),
        "r50": rel50 / min(SEARCH_LIMIT, n),
        "rr": rr,
        "rel10": rel10,
        "rel50": rel50,
        "returned": len(ranked),
    }


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(-(-p * len(s) // 100)) - 1))
    return s[k]


METRICS = (("p10", "P@10"), ("r50", "R@50"), ("rr", "MRR"), ("np10", "nP@10"))


def mean(xs):
    xs = list(xs)
    return sum(xs) / len(xs) if xs else float("nan")


def table(results: list[dict], systems: list[str]) -> str:
    groups: "OrderedDict[str, list[dict]]" = OrderedDict()
    groups["all"] = results
    for r in results:
        groups.setdefault(r["kind"], []).append(r)
    width = 14
    head1 = f"{'kind':<{width}}{'n':>4}"
    head2 = " " * (width + 4)
    for _, label in METRICS:
        w = 7 * len(systems)
        head1 += "  " + (f"{label:^{w}}" if len(systems) > 1 else f"{label:>{w}}")
        head2 += "  " + "".join(f"{s:>7}" for s in systems)
    lines = [head1, head2, "-" * len(head2)]
    for kind, rs in groups.items():
        line = f"{kind:<{width}}{len(rs):>4}"
        for m, _ in METRICS:
            line += "  " + "".join(f"{mean(r[s][m] for r in rs):>7.3f}" for s in systems)
        lines.append(line)
        if kind == "all":
            lines.append("-" * len(head2))
    return "\n".join(lines)


# --- main ---

def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.rsplit("\n\n", 1)[0],
        epilog="See ops/eval/README.md for the mapping, the judgement rules and the metrics.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", type=Path, default=DEFAULT_DATA,
                   help="catalog JSONL(.gz) (default: %(default)s)")
    p.add_argument("--server", default="https://127.0.0.1:8443", help="yiwang API base URL (default: %(default)s)")
    p.add_argument("--cluster-dir", type=Path,
                   help="directory of ops/cluster-local.sh: --cert/--key/--ca default to "
                        "DIR/certs/admin.pem, admin.key, ca.pem")
    p.add_argument("--cert", help="client certificate (PEM) of an admin principal")
    p.add_argument("--key", help="its private key (PEM)")
    p.add_argument("--ca", help="CA certificate (PEM) that signed the server")
    p.add_argument("--queries", type=Path, default=DEFAULT_QUERIES, help="judged queries (default: %(default)s)")
    p.add_argument("--out", type=Path, help="write every per-query result and the aggregates as JSON here")
    p.add_argument("--limit", type=int, help="use only the first N catalog entries (quick runs); "
                   "queries without relevant entries among them are then skipped, not an error")
    p.add_argument("--skip-load", action="store_true",
                   help="the catalog is already loaded (same --data and --limit): only evaluate")
    p.add_argument("--chunk", type=int, default=2000, help="NDJSON lines per bulk request (default: %(default)s)")
    p.add_argument("--index-wait", type=float, default=300,
                   help="seconds to wait for the search index to count every loaded dataset (default: %(default)s)")
    p.add_argument("--repeat", type=int, default=1,
                   help="run each query N times for the latency figures (default: %(default)s)")
    p.add_argument("--baseline-only", action="store_true", help="no server: evaluate the FTS5 baseline only")
    p.add_argument("--dry-run", type=Path, metavar="DIR",
                   help="no server: write departments.ndjson and datasets.ndjson to DIR, check them, exit")
    p.add_argument("--check-queries", action="store_true",
                   help="no server: print each query's number of relevant entries and some titles, exit")
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="per-query lines (-vv: also the top 3 titles of each system)")
    a = p.parse_args(argv)
    if a.cluster_dir:
        a.cert = a.cert or str(a.cluster_dir / "certs" / "admin.pem")
        a.key = a.key or str(a.cluster_dir / "certs" / "admin.key")
        a.ca = a.ca or str(a.cluster_dir / "certs" / "ca.pem")
    if a.chunk < 1 or a.repeat < 1 or (a.limit is not None and a.limit < 1):
        p.error("--chunk, --repeat and --limit must be positive")
    return a


def dry_run(out: Path, depts: list[dict], datasets: list[dict]) -> int:
    out.mkdir(parents=True, exist_ok=True)
    bad = 0
    for name, items, check in (("departments.ndjson", depts, validate_department),
                               ("datasets.ndjson", datasets, validate_dataset)):
        errors = Counter()
        with open(out / name, "w", encoding="utf-8") as f:
            for x in items:
                line = json.dumps(x, ensure_ascii=False)
                # what the server parses is the line, so check the round trip
                err = check(json.loads(line))
                if err:
                    errors[err] += 1
                f.write(line + "\n")
        print(f"{out / name}: {len(items)} lines, {sum(errors.values())} invalid")
        for err, n in errors.most_common(10):
            print(f"  {n:6d}  {err}")
        bad += sum(errors.values())
    codes = {d["code"] for d in depts}
    unknown = sum(1 for d in datasets if d["dept"] not in codes)
    clash = codes & {d["id"] for d in datasets}
    dup = len(datasets) - len({d["id"] for d in datasets})
    print(f"datasets naming an unlisted department: {unknown}; duplicate ids: {dup}; "
          f"ids equal to a department code: {len(clash)}")
    dist = lambda k: ", ".join(f"{v} {n}" for v, n in Counter(d[k] for d in datasets).most_common())
    print(f"share_type: {dist('share_type')}")
    print(f"update_cycle: {dist('update_cycle')}")
    print(f"format: {dist('format')}")
    print(f"themes: {len({d['theme'] for d in datasets})}; with summary: "
          f"{sum(1 for d in datasets if d['summary'])}; with keywords: {sum(1 for d in datasets if d['keywords'])}")
    return 1 if bad or unknown or dup or clash else 0


def main(argv=None) -> int:
    a = parse_args(argv)
    queries = load_queries(a.queries)
    t0 = time.monotonic()
    rows = read_catalog(a.data)
    depts, datasets, entries = convert(rows, a.limit)
    print(f"catalog: {len(rows)} entries in {a.data}, using {len(datasets)} "
          f"from {len(depts)} departments ({time.monotonic() - t0:.1f} s)", file=sys.stderr)

    if a.dry_run:
        return dry_run(a.dry_run, depts, datasets)

    live = not (a.baseline_only or a.check_queries)
    client = None
    load_report = None
    if live:
        client = Yiwang(a.server, a.cert, a.key, a.ca)
        if not a.skip_load:
            dep = bulk_load(client, "/v1/departments/bulk", depts, "code", a.chunk, "departments")
            report_failures("departments", dep["failed"], a.verbose > 0)
            ds = bulk_load(client, "/v1/datasets/bulk", datasets, "id", a.chunk, "datasets")
            report_failures("datasets", ds["failed"], a.verbose > 0)
            load_report = {
                "departments": {k: (len(v) if k == "failed" else v) for k, v in dep.items()},
                "datasets": {k: (len(v) if k == "failed" else v) for k, v in ds.items()},
            }
            print(f"loaded: departments {dep['created']} created, {dep['existing']} already there, "
                  f"{len(dep['failed'])} rejected; datasets {ds['created']} created, "
                  f"{ds['existing']} already there, {len(ds['failed'])} rejected "
                  f"({ds['seconds']:.1f} s)")
            # the evaluated corpus is what the server holds: rejected lines leave it
            rejected = {i for i, _ in ds["failed"]}
            if rejected:
                entries = [e for e in entries if e["id"] not in rejected]
            if not entries:
                print("error: no dataset was loaded, nothing to evaluate", file=sys.stderr)
                return 1
        total = wait_for_index(client, len(entries), a.index_wait)
        print(f"search index: {total} active datasets (corpus {len(entries)})")
        if total < len(entries):
            print(f"warning: after {a.index_wait:.0f} s the index counts {total} of the corpus's "
                  f"{len(entries)} datasets; evaluating anyway")

    # judgement
    judged = []
    empty = []
    for q in queries:
        rel = {e["id"] for e in entries if matches(q["rule"], e)}
        if not rel:
            empty.append(q)
        else:
            judged.append((q, rel))
    if empty:
        for q in empty:
            print(f"{'warning' if a.limit else 'error'}: query '{q['q']}' ({q['kind']}) "
                  f"has no relevant entry: rule {json.dumps(q['rule'], ensure_ascii=False)}")
        if not a.limit:
            return 2
        print(f"--limit: {len(empty)} queries without relevant entries skipped", file=sys.stderr)

    if a.check_queries:
        by_id = {e["id"]: e for e in entries}
        for q, rel in judged:
            print(f"{len(rel):6d}  [{q['kind']}] {q['q']}")
            for i in sorted(rel)[:: max(1, len(rel) // 4)][:4]:
                print(f"          {by_id[i]['title']}  ({by_id[i]['dept_name']})")
        return 0

    fts = Fts5Baseline(entries)
    systems = (["yiwang"] if live else []) + ["fts5"]
    latency = defaultdict(list)
    titles = {e["id"]: e["title"] for e in entries}
    results = []
    foreign = 0
    for q, rel in judged:
        row = {"q": q["q"], "kind": q["kind"], "relevant": len(rel),
               "fts5_like": Fts5Baseline.uses_like(q["q"])}
        ranked = {}
        for sysname in systems:
            for rep in range(a.repeat):
                t = time.perf_counter()
                if sysname == "yiwang":
                    res = client.search(q["q"], SEARCH_LIMIT)
                    ids = [h["id"] for h in res.get("hits", [])]
                else:
                    ids = fts.search(q["q"], SEARCH_LIMIT)
                latency[sysname].append((time.perf_counter() - t) * 1000)
                if rep == 0:
                    ranked[sysname] = ids
            if sysname == "yiwang":
                foreign += sum(1 for i in ranked[sysname] if i not in titles)
            row[sysname] = metrics(ranked[sysname], rel)
            row[sysname]["top"] = ranked[sysname][:10]
        results.append(row)
        if a.verbose:
            parts = [f"{s} P@10 {row[s]['p10']:.1f} R@50 {row[s]['r50']:.2f} RR {row[s]['rr']:.2f}"
                     f" ({row[s]['returned']} hits)" for s in systems]
            like = " [fts5: LIKE]" if row["fts5_like"] else ""
            print(f"[{q['kind']}] {q['q']}  relevant {len(rel)} | " + " | ".join(parts) + like)
            if a.verbose > 1:
                for s in systems:
                    for i in ranked[s][:3]:
                        mark = "+" if i in rel else "-"
                        print(f"      {s:6} {mark} {titles.get(i, i)}")

    print()
    print(f"queries: {len(results)} judged ({sum(1 for r in results if r['fts5_like'])} answered by "
          f"the FTS5 baseline through LIKE: a term shorter than 3 characters, which trigrams cannot match)")
    print(f"corpus: {len(entries)} datasets; relevant per query: median "
          f"{percentile([r['relevant'] for r in results], 50):.0f}, "
          f"min {min(r['relevant'] for r in results)}, max {max(r['relevant'] for r in results)}")
    print("P@10 = relevant in top 10 / 10; R@50 = relevant in top 50 / min(50, relevant); "
          "MRR = mean 1/rank of the first relevant hit in the top 50; "
          "nP@10 = relevant in top 10 / min(10, relevant)")
    print()
    print(table(results, systems))
    print()
    for s in systems:
        lat = latency[s]
        print(f"latency {s:<7} p50 {percentile(lat, 50):8.2f} ms   p99 {percentile(lat, 99):8.2f} ms"
              f"   ({len(lat)} searches{', client side, over mTLS' if s == 'yiwang' else ', in process'})")
    if foreign:
        print(f"note: yiwang returned {foreign} hits outside the evaluated corpus (counted not relevant)")

    if a.out:
        agg = {}
        for kind in ["all"] + sorted({r["kind"] for r in results}):
            rs = [r for r in results if kind == "all" or r["kind"] == kind]
            agg[kind] = {"n": len(rs), **{s: {m: mean(r[s][m] for r in rs) for m, _ in METRICS} for s in systems}}
        doc = {
            "data": str(a.data),
            "corpus": len(entries),
            "departments": len(depts),
            "server": a.server if live else None,
            "load": load_report,
            "latency_ms": {s: {"p50": percentile(latency[s], 50), "p99": percentile(latency[s], 99),
                               "n": len(latency[s])} for s in systems},
            "aggregates": agg,
            "queries": results,
        }
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(doc, ensure_ascii=False, indent=1))
        print(f"results: {a.out}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:
        sys.exit(1)
    except (ConnectionError, ssl.SSLError, HttpError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
