"""kernel/check_module_cycles.py: a parent and a child (or two siblings) that import each other are
named; a parent that only declares and re-exports its children passes."""
import check_module_cycles


def write(root, files):
    for path, text in files.items():
        full = root / "crates" / path
        full.parent.mkdir(parents=True, exist_ok=True)
        full.write_text(text)


def test_a_child_using_its_re_exporting_parent_is_a_pair(tmp_path):
    write(tmp_path, {
        "demo/src/lib.rs": "pub mod stage;\n",
        "demo/src/stage.rs": "mod part;\npub use part::Thing;\npub struct Error;\n",
        "demo/src/stage/part.rs": "use super::Error;\npub struct Thing(Error);\n",
    })
    assert check_module_cycles.pairs(str(tmp_path / "crates")) == ["demo: stage <-> stage::part"]


def test_siblings_in_one_direction_and_test_modules_pass(tmp_path):
    write(tmp_path, {
        "demo/src/lib.rs": "pub mod stage;\n",
        "demo/src/stage.rs": "mod error;\nmod part;\npub use error::Error;\npub use part::Thing;\n",
        "demo/src/stage/error.rs": "pub struct Error;\n",
        "demo/src/stage/part.rs": "use super::error::Error;\npub struct Thing(Error);\n"
                                  "#[cfg(test)]\nmod tests {\n    use crate::stage::Thing;\n}\n",
    })
    assert check_module_cycles.pairs(str(tmp_path / "crates")) == []
