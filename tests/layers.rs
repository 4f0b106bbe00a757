//! The page is a view: `src/ui/` reaches the log only through the engine
//! (its messages and `engine::api`), never through the store, the shared
//! log's code, the readers or the worker's host — checked on the source,
//! so a shortcut through a lower layer fails here, not in review.

use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("the directory is readable") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_page_imports_nothing_from_store_share_io_or_host() {
    let ui = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ui");
    let mut files = Vec::new();
    rust_files(&ui, &mut files);
    assert!(files.len() > 10, "src/ui holds the page's files");
    let forbidden = ["crate::store", "crate::share", "crate::io", "crate::host"];
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable");
        for (n, line) in text.lines().enumerate() {
            for f in forbidden {
                if line.contains(&format!("{f}::")) || line.contains(&format!("{f};")) {
                    found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "the page reaches below the engine's API:\n{}",
        found.join("\n")
    );
}
