"""A benchmark of a wrong result is worthless: trees are compared by the
SHA-256 of every file after each transfer."""
import hashlib
import os

IGNORED_TOP = {".foldersync.trash"}


def file_hash(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def tree_hashes(root):
    """{relative path: sha256} of the regular files under @root."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if dirpath == root:
            dirnames[:] = [d for d in dirnames if d not in IGNORED_TOP]
        for name in filenames:
            full = os.path.join(dirpath, name)
            out[os.path.relpath(full, root)] = file_hash(full)
    return out


class Mismatch(Exception):
    pass


def same_tree(expected, got_root, what):
    """@expected: tree_hashes() of the source. Raises Mismatch with the first
    differences."""
    got = tree_hashes(got_root)
    if got == expected:
        return len(got)
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    differ = sorted(k for k in set(expected) & set(got) if expected[k] != got[k])
    raise Mismatch("%s: the downloaded tree differs from the source: %d missing %s, %d extra %s, "
                   "%d different %s" % (what, len(missing), missing[:3], len(extra), extra[:3],
                                        len(differ), differ[:3]))
