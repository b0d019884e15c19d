//! Staging and committing changes, rebuilding, reopening and recovering the index.

use super::{corpus, doc, ids, open_with, search};
use crate::model::ShareType;
use crate::search::SearchIndex;

#[test]
fn upsert_replaces_and_delete_removes() {
    let (_dir, index) = open_with(corpus());
    let before = index.num_docs();

    let mut changed = corpus().remove(0);
    changed.title = "危险化学品经营许可证名录".into();
    index.upsert(&changed).expect("upsert");
    // Staged, not yet visible.
    let staged = search(&index, "YJJ-0001");
    assert_eq!(staged.hits[0].title, "危险化学品企业名录");
    index.commit(2).expect("commit");

    assert_eq!(index.num_docs(), before);
    let result = search(&index, "YJJ-0001");
    let matching: Vec<_> = result.hits.iter().filter(|h| h.id == "YJJ-0001").collect();
    assert_eq!(matching.len(), 1, "no duplicate after upsert");
    assert_eq!(matching[0].title, "危险化学品经营许可证名录");

    index.delete("YJJ-0001").expect("delete");
    index.commit(3).expect("commit");
    assert_eq!(index.num_docs(), before - 1);
    assert!(!ids(&search(&index, "危险化学品")).contains(&"YJJ-0001"));
    assert_eq!(index.applied_marker(), Some(3));
}

#[test]
fn committed_document_is_immediately_searchable() {
    let (_dir, index) = open_with(corpus());
    let new = doc(
        "MZJ-0001",
        "320600-MZJ",
        "南通市民政局",
        "最低生活保障对象名单",
        "享受城乡最低生活保障的家庭。",
        &[],
        "社会救助",
        ShareType::None,
    );
    index.upsert(&new).expect("upsert");
    index.commit(7).expect("commit");
    // Found by the full name and through the abbreviation 低保.
    assert_eq!(
        ids(&search(&index, "最低生活保障")).first(),
        Some(&"MZJ-0001")
    );
    assert_eq!(ids(&search(&index, "低保")).first(), Some(&"MZJ-0001"));
}

#[test]
fn reopening_keeps_documents_and_marker() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let index = SearchIndex::open(dir.path()).expect("open");
        assert!(index.opened_fresh());
        assert_eq!(index.applied_marker(), None);
        assert_eq!(
            index.rebuild(corpus().into_iter(), 42).expect("rebuild"),
            35
        );
    }
    let index = SearchIndex::open(dir.path()).expect("reopen");
    assert!(!index.opened_fresh());
    assert_eq!(index.applied_marker(), Some(42));
    assert_eq!(index.num_docs(), 35);
    assert_eq!(
        ids(&search(&index, "危险化学品")).first(),
        Some(&"YJJ-0001")
    );
}

#[test]
fn second_writer_is_refused_without_wiping() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = SearchIndex::open(dir.path()).expect("open");
    first.rebuild(corpus().into_iter(), 5).expect("rebuild");
    assert!(SearchIndex::open(dir.path()).is_err());
    drop(first);
    let again = SearchIndex::open(dir.path()).expect("reopen");
    assert!(!again.opened_fresh());
    assert_eq!(again.num_docs(), 35);
}

#[test]
fn corrupted_index_is_recreated_fresh() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let index = SearchIndex::open(dir.path()).expect("open");
        index.rebuild(corpus().into_iter(), 9).expect("rebuild");
    }
    std::fs::write(dir.path().join("meta.json"), b"\x00garbage{{").expect("corrupt");
    let index = SearchIndex::open(dir.path()).expect("open corrupted");
    assert!(index.opened_fresh());
    assert_eq!(index.applied_marker(), None);
    assert_eq!(index.num_docs(), 0);
    // And it is usable.
    index.rebuild(corpus().into_iter(), 10).expect("rebuild");
    assert_eq!(index.num_docs(), 35);
}

#[test]
fn foreign_directory_is_not_wiped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let precious = dir.path().join("catalog.redb");
    std::fs::write(&precious, b"not an index").expect("write");
    assert!(SearchIndex::open(dir.path()).is_err());
    assert!(precious.exists());
}

#[test]
fn rebuild_replaces_everything() {
    let (_dir, index) = open_with(corpus());
    let only = corpus().remove(3);
    assert_eq!(
        index.rebuild(std::iter::once(only), 11).expect("rebuild"),
        1
    );
    assert_eq!(index.num_docs(), 1);
    assert_eq!(index.applied_marker(), Some(11));
    assert_eq!(search(&index, "").total, 1);
}
