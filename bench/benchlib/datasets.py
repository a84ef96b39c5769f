"""The data sets, from a fixed seed: text-like (prose from a Zipf vocabulary
of pronounceable words: zlib level 1 shrinks it about 2.2x) and random.
Large files are cached (they take seconds to make) in
${XDG_CACHE_HOME:-~/.cache}/foldersync-bench/, keyed by seed and size."""
import os
import random

GENERATOR = 1  # bump when the output changes: the cache is keyed by it
MiB = 1 << 20

COMMON = ("the of and to a in is that for it as was with be by on not he i this are or his from "
          "at which but have an they you were her she there been one all we their has would when "
          "if so no will more can who its said out up about into than them some could only other "
          "time new these two may then do first any my now such like our over man me even most "
          "made after also did many before must through back years where much your way well down "
          "should because each just those people how too little state good very make world still "
          "own see men work long get here between both life being under never day same another "
          "know while last might us great old year off come since against go came right used take "
          "three").split()
ONSET = "b c d f g h j k l m n p r s t v w y z bl br ch cl cr dr fl fr gl gr pl pr sc sh sl sp st str th tr wh".split()
VOWEL = "a e i o u a e i o ai ea ee ie oo ou".split()
CODA = ["", "", "", "n", "r", "s", "t", "l", "nd", "st", "ng", "rt", "ck", "m", "nt", "ss"]


def cache_dir():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    d = os.path.join(base, "foldersync-bench")
    os.makedirs(d, exist_ok=True)
    return d


def _vocabulary(rng, n=5000):
    seen, words = set(COMMON), list(COMMON)
    while len(words) < n:
        w = "".join(rng.choice(ONSET) + rng.choice(VOWEL) + rng.choice(CODA)
                    for _ in range(rng.choice((1, 1, 2, 2, 2, 3, 3, 4))))
        if w not in seen:
            seen.add(w)
            words.append(w)
    return words


def text_bytes(seed, size):
    """@size bytes of prose-like text (sentences, ~72-column lines, paragraphs)."""
    rng = random.Random("text-%d" % seed)
    words = _vocabulary(rng)
    cum, acc = [], 0.0
    for i in range(len(words)):
        acc += 1.0 / (i + 1) ** 1.1
        cum.append(acc)
    out, n = [], 0
    while n < size:
        ws = rng.choices(words, cum_weights=cum, k=8192)
        lines, line, i = [], "", 0
        while i < len(ws):
            k = rng.randint(5, 18)
            sent = ws[i:i + k]
            i += k
            sent[0] = sent[0].capitalize()
            if len(sent) > 6 and rng.random() < 0.4:
                sent[len(sent) // 2] += ","
            s = " ".join(sent) + rng.choice(".....?!")
            if line and len(line) + len(s) > 72:
                lines.append(line)
                line = s
            else:
                line = line + " " + s if line else s
            if rng.random() < 0.03:
                lines += [line, ""]
                line = ""
        lines.append(line)
        block = ("\n".join(lines) + "\n").encode()
        out.append(block)
        n += len(block)
    return b"".join(out)[:size]


def _cached(name, make):
    path = os.path.join(cache_dir(), name)
    if not os.path.exists(path):
        tmp = path + ".tmp.%d" % os.getpid()
        with open(tmp, "wb") as f:
            make(f)
        os.replace(tmp, path)
    return path


def base_text(seed):
    """32 MiB of unique text: the source of every text-like set."""
    return _cached("text-base-g%d-s%d-32m" % (GENERATOR, seed),
                   lambda f: f.write(text_bytes(seed, 32 * MiB)))


def big_file(kind, seed, size):
    """A cached file of @size bytes: 'text' (64 KiB blocks of the base text
    in a seeded order, so every 1 MiB chunk differs; zlib's 32 KiB window
    cannot tell) or 'random'."""
    def make_text(f):
        with open(base_text(seed), "rb") as b:
            base = b.read()
        rng = random.Random("big-text-%d" % seed)
        block = 64 * 1024
        starts = list(range(0, len(base) - block + 1, block))
        written = 0
        while written < size:
            rng.shuffle(starts)
            for s in starts:
                n = min(block, size - written)
                f.write(base[s:s + n])
                written += n
                if written >= size:
                    break

    def make_random(f):
        rng = random.Random("random-%d" % seed)
        for off in range(0, size, MiB):
            f.write(rng.randbytes(min(MiB, size - off)))

    return _cached("%s-g%d-s%d-%d" % (kind, GENERATOR, seed, size),
                   make_text if kind == "text" else make_random)


def write_small_files(root, seed, count, size, per_dir=100, text_offset=0):
    """@count text-like files of @size bytes in directories of @per_dir
    (two levels when there are more than 100 directories). Returns the list
    of relative paths."""
    with open(base_text(seed), "rb") as b:
        base = b.read()
    paths = []
    n_dirs = (count + per_dir - 1) // per_dir
    for i in range(count):
        d = i // per_dir
        rel_dir = "d%03d/e%03d" % (d // 100, d % 100) if n_dirs > 100 else "d%03d" % d
        rel = "%s/f%06d.txt" % (rel_dir, i)
        if i % per_dir == 0:
            os.makedirs(os.path.join(root, rel_dir), exist_ok=True)
        off = (text_offset + i * size) % (len(base) - size)
        with open(os.path.join(root, rel), "wb") as f:
            f.write(base[off:off + size])
        paths.append(rel)
    return paths


def link_big(path, kind, seed, size):
    """Puts the cached big file at @path (a hard link when possible: no copy)."""
    src = big_file(kind, seed, size)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        os.link(src, path)
    except OSError:
        import shutil
        shutil.copyfile(src, path)
    return path
