"""Unit tests of eval.py that need neither a server nor the catalog file.

    python3 -m unittest discover -s ops/eval -p 'test_*.py'
"""

import importlib.util
import json
import unittest
from pathlib import Path

_spec = importlib.util.spec_from_file_location("yiwang_eval", Path(__file__).with_name("eval.py"))
ev = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ev)


def row(i, **kw):
    r = {
        "id": f"guizhou_guiyang-{i:05d}", "region": "guizhou_guiyang", "title": "加油站信息",
        "description": "", "department": "贵阳市商务局", "theme": None, "industry": None,
        "open_attr": None, "update_cycle": None, "formats": [], "tags": [], "published": None,
        "record_count": None,
    }
    r.update(kw)
    return r


class Validation(unittest.TestCase):
    def test_codes_follow_validate_rs(self):
        self.assertTrue(ev.is_code("320600-YJJ"))
        self.assertFalse(ev.is_code("-X"))
        self.assertFalse(ev.is_code("a b"))
        self.assertFalse(ev.is_code("320600/YJJ"))
        self.assertFalse(ev.is_code("X" * 33))
        self.assertTrue(ev.is_resource_code("anhui_anhui-00001"))
        self.assertFalse(ev.is_resource_code("../etc"))
        self.assertFalse(ev.is_resource_code("x/y"))

    def test_text_rules(self):
        self.assertIsNotNone(ev.text_error("title", "  ", 200, True))
        self.assertIsNotNone(ev.text_error("summary", "a\tb", 4000, False))
        self.assertIsNone(ev.text_error("summary", "a\nb", 4000, False))
        self.assertIsNotNone(ev.text_error("title", "字" * 201, 200, True))


class Conversion(unittest.TestCase):
    def test_mapping(self):
        rows = [
            row(1, open_attr="有条件开放", update_cycle="每半年", formats=["接口", "xls"],
                tags=["a", "a", "", "x" * 51] + [f"t{i}" for i in range(30)],
                description="<p>含&amp;字段\r\n说明</p>", industry="农、林、牧、渔业\r\n教育"),
            row(2, open_attr="无条件", update_cycle="每天", formats=["xls"], theme="交通运输"),
            row(3, department="贵阳市商务局 ", update_cycle="奇怪"),
        ]
        depts, datasets, entries = ev.convert(rows, None)
        self.assertEqual(len(depts), 1, "names are cleaned before grouping")
        self.assertEqual(depts[0]["code"], "GUIZHOU-GUIYANG-0001")
        self.assertEqual(depts[0]["region"], "贵州省贵阳市")
        a, b, c = datasets
        self.assertEqual((a["share_type"], a["share_condition"]), ("conditional", ev.SHARE_CONDITION))
        self.assertEqual(a["update_cycle"], "yearly")
        self.assertEqual(a["format"], "api")
        self.assertEqual(a["summary"], "含&字段 说明")
        self.assertEqual(a["theme"], "农、林、牧、渔业")
        self.assertEqual(a["keywords"][0], "a")
        self.assertEqual(len(a["keywords"]), ev.MAX_KEYWORDS)
        self.assertEqual((b["share_type"], b["update_cycle"], b["format"], b["theme"]),
                         ("unconditional", "daily", "file", "交通运输"))
        self.assertEqual((c["update_cycle"], c["theme"]), ("irregular", "其他"))
        for d in datasets:
            self.assertIsNone(ev.validate_dataset(json.loads(json.dumps(d))), d)
        self.assertEqual(entries[0]["dept_name"], "贵阳市商务局")

    def test_codes_do_not_depend_on_limit(self):
        rows = [row(1, department="乙局"), row(2, department="甲局")]
        full = {d["name"]: d["code"] for d in ev.convert(rows, None)[0]}
        first = {d["name"]: d["code"] for d in ev.convert(rows, 1)[0]}
        self.assertEqual(first["乙局"], full["乙局"])

    def test_bad_ids_are_repaired_and_unique(self):
        rows = [row(1, id="a/b c"), row(2, id="a-b-c"), row(3, id="-x")]
        ids = [d["id"] for d in ev.convert(rows, None)[1]]
        self.assertEqual(len(set(ids)), 3)
        self.assertTrue(all(ev.is_resource_code(i) for i in ids), ids)


class Rules(unittest.TestCase):
    E = {"id": "x", "title": "宜宾市监督性监测", "summary": "废气", "keywords": ["环保"], "dept_name": "市生态环境局"}

    def test_keys(self):
        m = ev.matches
        self.assertTrue(m({"title_any": ["监测", "无"]}, self.E))
        self.assertFalse(m({"title_all": ["监测", "无"]}, self.E))
        self.assertTrue(m({"text_any": ["环保"]}, self.E))
        self.assertTrue(m({"dept_any": ["生态环境"]}, self.E))
        self.assertFalse(m({"title_any": ["监测"], "not_title_any": ["监督"]}, self.E))
        self.assertTrue(m({"title_regex": "^宜宾"}, self.E))
        self.assertTrue(m({"any": [{"title_any": ["无"]}, {"dept_any": ["环境"]}]}, self.E))
        self.assertFalse(m({"all": [{"title_any": ["监测"]}, {"dept_any": ["公安"]}]}, self.E))

    def test_unknown_key_is_refused(self):
        with self.assertRaises(SystemExit):
            ev.check_rule({"title_has": ["x"]}, "q")

    def test_shipped_queries_parse(self):
        qs = ev.load_queries(ev.DEFAULT_QUERIES)
        self.assertGreaterEqual(len(qs), 60)


class Metrics(unittest.TestCase):
    def test_metrics(self):
        rel = {"a", "b", "c"}
        m = ev.metrics(["x", "a", "y", "b"], rel)
        self.assertAlmostEqual(m["p10"], 0.2)
        self.assertAlmostEqual(m["np10"], 2 / 3)
        self.assertAlmostEqual(m["r50"], 2 / 3)
        self.assertAlmostEqual(m["rr"], 0.5)
        many = {str(i) for i in range(300)}
        self.assertAlmostEqual(ev.metrics([str(i) for i in range(50)], many)["r50"], 1.0)
        self.assertEqual(ev.metrics([], rel)["rr"], 0.0)

    def test_percentile(self):
        self.assertEqual(ev.percentile([5, 1, 3], 50), 3)
        self.assertEqual(ev.percentile(list(range(1, 101)), 99), 99)


class Baseline(unittest.TestCase):
    def setUp(self):
        entries = [
            {"id": "t", "title": "危险化学品企业名录", "summary": ""},
            {"id": "s", "title": "企业名录", "summary": "含危险化学品经营企业"},
            {"id": "l", "title": "城市低保人员", "summary": ""},
            {"id": "q", "title": "50%的\"样本\"", "summary": ""},
        ]
        self.b = ev.Fts5Baseline(entries)

    def test_title_ranks_first(self):
        self.assertEqual(self.b.search("危险化学品"), ["t", "s"])

    def test_short_terms_use_like(self):
        self.assertTrue(ev.Fts5Baseline.uses_like("低保"))
        self.assertEqual(self.b.search("低保"), ["l"])
        self.assertEqual(self.b.search("低保 危险化学品")[0], "l")

    def test_quoting(self):
        self.assertEqual(self.b.search('"样本"'), ["q"])
        self.assertEqual(self.b.search("50%"), ["q"])
        self.assertEqual(self.b.search("OR AND NOT"), [])


if __name__ == "__main__":
    unittest.main()
