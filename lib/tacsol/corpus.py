"""Solidity corpus: npm manifest, package fetch, import resolution, solc version choice, cached standard-JSON compiles.

A *compile unit* is one main .sol file plus the closure of its imports, compiled by one solcjs version with one
setting. Units run through ``solc_compile.js`` in small batches, one node process per batch (solcjs crashes on huge
jobs); a batch that dies is retried one unit per process. Outputs are cached by sha256(compiler version, standard-JSON
input), so a rebuild only compiles what changed. Nothing here raises on a bad source: problems become
:class:`Reject` records with a reason.
"""
from __future__ import annotations

import dataclasses
import fnmatch
import gzip
import hashlib
import json
import os
import posixpath
import re
import subprocess
import tarfile
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Iterable

import yaml

from . import paths
from .ioutil import atomic_write_bytes

MANIFEST = Path(__file__).resolve().parent / "data" / "corpus_manifest.yaml"
PERMISSIVE = {"MIT", "ISC", "Apache-2.0", "BSD-2-Clause", "BSD-3-Clause", "Unlicense", "CC0-1.0"}
NODE_HELPER = Path(__file__).resolve().parent / "solc_compile.js"
CACHE_FORMAT = 1  # bump when the trimmed artifact layout changes


@dataclasses.dataclass
class Reject:
    item: str       # package@version:file[:contract] or row id
    reason: str     # short key: missing_import, no_compiler, compile_error, compile_crash, lift_error, ...
    detail: str = ""
    package: str = ""
    settings: str = ""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# ---------------------------------------------------------------------------------------------- manifest / fetch
@dataclasses.dataclass
class Package:
    name: str
    version: str
    license: str
    include: list[str] = dataclasses.field(default_factory=lambda: ["contracts/**", "src/**"])
    exclude: list[str] = dataclasses.field(default_factory=list)
    deps: dict[str, str] = dataclasses.field(default_factory=dict)  # import prefix package -> version (in manifest)
    compile: bool = True    # False: only provides imports to other packages
    note: str = ""

    @property
    def key(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def permissive(self) -> bool:
        return self.license in PERMISSIVE


def load_manifest(path: str | os.PathLike | None = None, only: Iterable[str] | None = None) -> list[Package]:
    """Packages of the manifest (YAML list under ``packages``). ``only``: names or name@version to keep."""
    path = paths.resolve(path) if path else MANIFEST
    doc = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    pkgs = []
    for i, entry in enumerate(doc.get("packages") or []):
        for field in ("name", "version", "license"):
            if not entry.get(field):
                raise ValueError(f"{path}: package #{i} ({entry.get('name', '?')}) lacks field {field!r}")
        unknown = set(entry) - {f.name for f in dataclasses.fields(Package)}
        if unknown:
            raise ValueError(f"{path}: package {entry['name']}: unknown field(s) {sorted(unknown)}")
        pkgs.append(Package(**{**entry, "version": str(entry["version"])}))
    if only:
        want = set(only)
        pkgs = [p for p in pkgs if p.name in want or p.key in want or not p.compile]
        missing = want - {p.name for p in pkgs} - {p.key for p in pkgs}
        if missing:
            raise ValueError(f"{path}: no package named {sorted(missing)} in the manifest")
    return pkgs


def _package_dir(pkg: Package, cache: Path | None = None) -> Path:
    return (cache or paths.cache_dir() / "npm") / pkg.key.replace("/", "__")


def is_fetched(pkg: Package) -> bool:
    return (_package_dir(pkg) / ".complete").exists()


def fetch_package(pkg: Package, cache: Path | None = None) -> Path:
    """`npm pack NAME@VERSION` into outputs/cache/npm/ and extract once; returns the package root."""
    cache = cache or paths.cache_dir() / "npm"
    dest = _package_dir(pkg, cache)
    root = dest / "package"
    if (dest / ".complete").exists():
        return root
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".pack-") as tmp:
        proc = subprocess.run(["npm", "pack", pkg.key, "--silent", "--pack-destination", tmp], capture_output=True,
                              text=True, timeout=300)
        tgz = list(Path(tmp).glob("*.tgz"))
        if proc.returncode != 0 or not tgz:
            raise RuntimeError(f"npm pack {pkg.key} failed: {(proc.stderr or proc.stdout).strip()[-400:]}")
        out = Path(tmp) / "x"
        with tarfile.open(tgz[0]) as tf:
            tf.extractall(out, filter="data")
        # npm tarballs usually hold package/, a few hold another top folder
        tops = [p for p in out.iterdir() if p.is_dir()]
        if dest.exists():
            import shutil

            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        os.replace(tops[0] if len(tops) == 1 else out, root)
    (dest / ".complete").write_text(pkg.key)
    return root


def package_license(root: Path) -> str:
    try:
        meta = json.loads((root / "package.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    lic = meta.get("license") or ""
    return lic.get("type", "") if isinstance(lic, dict) else str(lic)


# ------------------------------------------------------------------------------------------------------- licences
# The licence of a pair is that of every source its compile unit was compiled from, not its package's: permissive
# packages ship non-permissive files (Chainlink 0.8.0 bundles BUSL-1.1 automation and a GPL-3.0 EntryPoint).
_SPDX_TAG = "SPDX-License-Identifier:"
_SPDX_TOKEN = re.compile(r"\(|\)|[^\s()]+")
_GNU_HEADER = re.compile(r"GNU\s+(Affero\s+|Lesser\s+)?General\s+Public\s+License", re.I)
_PERMISSIVE_LOWER = {x.lower() for x in PERMISSIVE}


def spdx_of(text: str) -> str:
    """The SPDX-License-Identifier expression of a source file, as solc reads it: the rest of the line after the
    tag in a comment (a closing */ dropped); "" without one."""
    for m in _COMMENT_OR_STRING.finditer(text):
        c = m.group(0)
        if c[0] in "\"'" or _SPDX_TAG not in c:
            continue
        value = c.split(_SPDX_TAG, 1)[1].split("\n", 1)[0]
        return value.split("*/", 1)[0].strip()
    return ""


def is_permissive(expr: str) -> bool:
    """Whether an SPDX licence expression lets the code ship under a permissive licence: an identifier in PERMISSIVE
    (case-insensitive), an OR with a permissive side ("GPL-3.0-or-later OR MIT"), an AND whose every side is;
    "X WITH exception" is as X. UNLICENSED, NOASSERTION, LicenseRef-*, "" and what does not parse are not."""
    # "Apache 2.0" (Chainlink's vendored Strings.sol): an identifier with a space for the hyphen before its version
    toks = _SPDX_TOKEN.findall(re.sub(r"\b([A-Za-z]+) (\d+\.\d+)\b", r"\1-\2", expr or ""))
    pos = 0

    def peek() -> str:
        return toks[pos].upper() if pos < len(toks) else ""

    def atom() -> bool:
        nonlocal pos
        if peek() == "(":
            pos += 1
            v = any_of()
            if peek() != ")":
                raise ValueError
            pos += 1
            return v
        if peek() in ("", ")", "AND", "OR", "WITH"):
            raise ValueError
        v = toks[pos].lower() in _PERMISSIVE_LOWER
        pos += 1
        if peek() == "WITH":  # an exception only adds permissions
            pos += 2
            if pos > len(toks):
                raise ValueError
        return v

    def all_of() -> bool:
        nonlocal pos
        v = atom()
        while peek() == "AND":
            pos += 1
            v = atom() and v
        return v

    def any_of() -> bool:
        nonlocal pos
        v = all_of()
        while peek() == "OR":
            pos += 1
            v = all_of() or v
        return v

    try:
        v = any_of()
    except ValueError:
        return False
    return v and pos == len(toks)


@dataclasses.dataclass(frozen=True)
class FileLicense:
    path: str       # unit path
    license: str    # SPDX expression
    how: str        # "spdx" (its own line), "package" (none: the package's licence), "gnu-header" (GNU text, no SPDX)

    @property
    def permissive(self) -> bool:
        return is_permissive(self.license)

    def __str__(self) -> str:
        why = {"spdx": "", "package": " (no SPDX line: its package's licence)",
               "gnu-header": " (GNU licence text, no SPDX line)"}[self.how]
        return f"{self.path} is {self.license or 'unknown'}{why}"


def file_license(path: str, text: str, inherited: str) -> FileLicense:
    """A source file's licence: its SPDX line; without one, a GNU licence header before the code (vendored WETH9
    and Compound/DAI-era files carry the text but no SPDX line), else the licence of the package it comes from."""
    spdx = spdx_of(text)
    if spdx:
        return FileLicense(path, spdx, "spdx")
    code = re.search(r"\b(pragma|import|contract|library|interface|abstract)\b", strip_comments(text, keep_length=True))
    head = text[: code.start()] if code else text
    gnu = _GNU_HEADER.search(head)
    if gnu:
        family = "AGPL" if "affero" in gnu.group(0).lower() else "LGPL" if "lesser" in gnu.group(0).lower() else "GPL"
        return FileLicense(path, f"LicenseRef-GNU-{family}-header", "gnu-header")
    return FileLicense(path, inherited, "package")


def unit_license(files: Iterable[FileLicense]) -> str:
    """One SPDX expression for a compile unit: its files' distinct licences joined by AND (an OR in parentheses),
    so that is_permissive(unit) holds exactly when it holds for every file."""
    parts = sorted({f.license or "NOASSERTION" for f in files})
    return " AND ".join(f"({e})" if len(parts) > 1 and _top_level_or(e) else e for e in parts)


def _top_level_or(expr: str) -> bool:
    depth = 0
    for tok in _SPDX_TOKEN.findall(expr):
        depth += {"(": 1, ")": -1}.get(tok, 0)
        if depth == 0 and tok.upper() == "OR":
            return True
    return False


# ------------------------------------------------------------------------------------------------ source scanning
# Leftmost first, as a left-to-right scan of Solidity meets them: a string literal (to its closing quote, escapes
# skipped; unterminated: to the end), a // comment, or a /* */ comment (unterminated: to the end).
_COMMENT_OR_STRING = re.compile(r'"(?:\\.|[^"\\])*"?|\'(?:\\.|[^\'\\])*\'?|//[^\n]*|/\*.*?(?:\*/|\Z)', re.S)
_NOT_NEWLINE = re.compile(r"[^\n]")


def strip_comments(text: str, keep_length: bool = False) -> str:
    """Remove // and /* */ comments, keeping string literals (so that '//' inside a string survives).
    keep_length: blank them with spaces instead (newlines kept), so that offsets into `text` stay valid."""
    def replace(m: re.Match) -> str:
        s = m.group(0)
        if s[0] in "\"'":
            return s
        if keep_length:
            return _NOT_NEWLINE.sub(" ", s)
        return "" if s[1] == "/" else " "

    return _COMMENT_OR_STRING.sub(replace, text)


_IMPORT = re.compile(r'\bimport\b[^;"\']*["\']([^"\']+)["\'][^;]*;')
_PRAGMA = re.compile(r"\bpragma\s+solidity\s+([^;]+);")
_CONTRACT = re.compile(r"(?:^|[;}])\s*(abstract\s+)?(contract|library|interface)\s+(\w+)", re.M)


def imports_of(text: str) -> list[str]:
    return _IMPORT.findall(strip_comments(text))


def pragmas_of(text: str) -> list[str]:
    return [p.strip() for p in _PRAGMA.findall(strip_comments(text))]


def has_concrete_contract(text: str) -> bool:
    return any(m.group(2) == "contract" and not m.group(1) for m in _CONTRACT.finditer(strip_comments(text)))


# --------------------------------------------------------------------------------------------- version choosing
_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)")


def version_tuple(text: str) -> tuple[int, int, int]:
    """(major, minor, patch) of the first x.y.z in a solc version as written anywhere ("0.8.19",
    "v0.8.19+commit.7dd6d404", a record's settings "0.8.19/opt200/paris"); (0, 0, 0) when there is none."""
    m = _VERSION.search(text or "")
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else (0, 0, 0)


_CMP = re.compile(r"(\^|~|>=|<=|>|<|=)?\s*v?(\d+)(?:\.(\d+|x|X|\*))?(?:\.(\d+|x|X|\*))?")


def _alternative_ok(alt: str, v: tuple[int, int, int]) -> bool:
    comps = _CMP.findall(alt)
    if not comps:
        return False
    for op, a, b, c in comps:
        wild = lambda s: s in ("", "x", "X", "*")  # noqa: E731
        maj, mnr, pat = int(a), (0 if wild(b) else int(b)), (0 if wild(c) else int(c))
        base = (maj, mnr, pat)
        if op == "^":
            if wild(b) or maj > 0:
                upper = (maj + 1, 0, 0)
            elif mnr > 0 or wild(c):
                upper = (0, mnr + 1, 0)
            else:
                upper = (0, 0, pat + 1)
            ok = base <= v < upper
        elif op == "~":
            ok = base <= v < ((maj, mnr + 1, 0) if not wild(b) else (maj + 1, 0, 0))
        elif op == ">=":
            ok = v >= base
        elif op == ">":
            ok = v > base
        elif op == "<=":
            ok = v <= base
        elif op == "<":
            ok = v < base
        else:  # exact or x-range
            if wild(b):
                ok = v[0] == maj
            elif wild(c):
                ok = v[:2] == (maj, mnr)
            else:
                ok = v == base
        if not ok:
            return False
    return True


def version_satisfies(version: str, spec: str) -> bool:
    v = version_tuple(version)
    return any(_alternative_ok(alt, v) for alt in spec.split("||"))


def installed_solc() -> list[str]:
    """Versions of the solcjs npm aliases node_modules/solc-X.Y.Z, ascending."""
    found = []
    for d in paths.node_modules().glob("solc-*"):
        m = re.fullmatch(r"solc-(\d+\.\d+\.\d+)", d.name)
        if m and (d / "soljson.js").exists():
            found.append(m.group(1))
    return sorted(found, key=version_tuple)


def choose_version(specs: Iterable[str], installed: list[str] | None = None, policy: str = "lowest") -> str | None:
    """Installed solc satisfying every pragma of the unit (None if none does). policy 'lowest' (default) picks
    the oldest match, usually the release the authors targeted, which spreads the corpus over more compilers;
    'highest' the newest."""
    if policy not in ("lowest", "highest"):
        raise ValueError(f"version policy {policy!r}: expected 'lowest' or 'highest'")
    installed = installed if installed is not None else installed_solc()
    specs = list(specs)
    ok = [v for v in installed if all(version_satisfies(v, s) for s in specs)]
    return (ok[0] if policy == "lowest" else ok[-1]) if ok else None


def nearest_installed(wanted: str, installed: list[str] | None = None) -> str | None:
    """Installed solc for code written for `wanted` (a record's version): that version if installed, else the
    lowest installed patch of the same minor above it, else the highest of the same minor, else None (a different
    minor changes the language). No version in `wanted`: the newest installed."""
    installed = installed if installed is not None else installed_solc()
    w = version_tuple(wanted)
    if w == (0, 0, 0):
        return installed[-1] if installed else None
    same = sorted((v for v in installed if version_tuple(v)[:2] == w[:2]), key=version_tuple)
    above = [v for v in same if version_tuple(v) >= w]
    return above[0] if above else same[-1] if same else None


# ------------------------------------------------------------------------------------------------------ settings
@dataclasses.dataclass(frozen=True)
class Setting:
    """One compiler configuration: 'noopt', 'opt200', 'viair-opt200', optionally '@<evmVersion>'."""
    optimize: bool
    runs: int = 200
    via_ir: bool = False
    evm_version: str | None = None

    @classmethod
    def parse(cls, text: str) -> "Setting":
        spec, _, evm = text.partition("@")
        m = re.fullmatch(r"(viair-)?(noopt|opt(\d+))", spec.strip())
        if not m:
            raise ValueError(f"setting {text!r}: expected noopt | opt<runs> | viair-opt<runs> [@evmVersion]")
        return cls(optimize=m.group(2) != "noopt", runs=int(m.group(3) or 200), via_ir=bool(m.group(1)),
                   evm_version=evm.strip() or None)

    @property
    def name(self) -> str:
        core = "noopt" if not self.optimize else f"opt{self.runs}"
        return ("viair-" if self.via_ir else "") + core

    def applies_to(self, version: str) -> bool:
        # viaIR is only dependable from 0.8.13 (earlier: experimental, stack-too-deep on most real code)
        return not self.via_ir or version_tuple(version) >= (0, 8, 13)

    def solc_settings(self, version: str) -> dict:
        s: dict[str, Any] = {"optimizer": {"enabled": self.optimize, "runs": self.runs}}
        if self.via_ir:
            s["viaIR"] = True
        if self.evm_version:
            s["evmVersion"] = self.evm_version
        return s


# ----------------------------------------------------------------------------------------------- import resolving
def _byte_position(raw: bytes, offset: int) -> str:
    line, column = raw.count(b"\n", 0, offset) + 1, offset - raw.rfind(b"\n", 0, offset)
    return f"line {line}, column {column}: byte 0x{raw[offset]:02x}"


class Resolver:
    """Maps Solidity import paths to files: longest matching prefix (package names, remappings) wins."""

    def __init__(self, mappings: dict[str, Path]):
        self.mappings = sorted(((k, Path(v)) for k, v in mappings.items()), key=lambda kv: -len(kv[0]))
        self._text: dict[str, str | None] = {}
        self.not_utf8: dict[str, str] = {}  # unit path -> where its first byte that is not UTF-8 is

    def file_for(self, unit_path: str) -> Path | None:
        for prefix, root in self.mappings:
            if unit_path.startswith(prefix):
                p = root / unit_path[len(prefix):]
                if p.is_file():
                    return p
        return None

    def text(self, unit_path: str) -> str | None:
        """The file's text; bytes that are not UTF-8 become U+FFFD (solc reads UTF-8) and are noted in not_utf8."""
        if unit_path not in self._text:
            f = self.file_for(unit_path)
            raw = f.read_bytes() if f else None
            try:
                self._text[unit_path] = raw.decode("utf-8") if raw is not None else None
            except UnicodeDecodeError as exc:
                self.not_utf8[unit_path] = _byte_position(raw, exc.start)
                self._text[unit_path] = raw.decode("utf-8", errors="replace")
        return self._text[unit_path]

    def closure(self, main: str) -> tuple[dict[str, str], list[str]]:
        """All sources reachable from main (unit path -> content) and the imports that could not be found."""
        sources: dict[str, str] = {}
        missing: list[str] = []
        todo = [main]
        while todo:
            cur = todo.pop()
            if cur in sources:
                continue
            txt = self.text(cur)
            if txt is None:
                missing.append(cur)
                continue
            sources[cur] = txt
            for imp in imports_of(txt):
                todo.append(posixpath.normpath(posixpath.join(posixpath.dirname(cur), imp))
                            if imp.startswith(".") else self._remap(imp))
        return sources, missing

    def _remap(self, imp: str) -> str:
        # remappings are prefix → prefix rewrites; mappings already cover them, so the import path is the unit path
        return imp


@dataclasses.dataclass
class SourceSet:
    """A package or user folder ready to compile: the main files (unit paths) and a resolver."""
    label: str           # package@version or folder name
    license: str
    mains: list[str]
    resolver: Resolver
    # unit path prefix -> licence of the package those files come from (the package's own name and its deps');
    # a file without an SPDX line inherits the longest matching one, else `license`
    licenses: dict[str, str] = dataclasses.field(default_factory=dict)

    def inherited_license(self, path: str) -> str:
        best = max((p for p in self.licenses if path.startswith(p)), key=len, default=None)
        return self.license if best is None else self.licenses[best]

    def file_licenses(self, sources: dict[str, str]) -> list[FileLicense]:
        """The licence of every file of a unit ({unit path: text}), in path order."""
        return [file_license(p, t, self.inherited_license(p)) for p, t in sorted(sources.items())]


def _matches(rel: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(rel, pat) or fnmatch.fnmatch(rel, pat.rstrip("*").rstrip("/") + "/*")
               for pat in patterns)


def package_sources(pkg: Package, roots: dict[str, Path], licenses: dict[str, str] | None = None) -> SourceSet:
    """Main files of a fetched package; imports resolve inside the package (relative or by its own name) and in
    the packages named by ``deps`` (fetched roots given by ``roots``: key -> root). ``licenses`` (key -> licence,
    the manifest's) is what the deps' files without an SPDX line inherit; a dep not in it: unknown (not permissive)."""
    root = roots[pkg.key]
    mappings = {f"{pkg.name}/": root}
    for dep_name, dep_version in pkg.deps.items():
        dep_root = roots.get(f"{dep_name}@{dep_version}")
        if dep_root is not None:
            mappings[f"{dep_name}/"] = dep_root
    mains = []
    for f in sorted(root.rglob("*.sol")):
        rel = f.relative_to(root).as_posix()
        if not _matches(rel, pkg.include) or _matches(rel, pkg.exclude):
            continue
        if has_concrete_contract(f.read_text(encoding="utf-8", errors="replace")):
            mains.append(f"{pkg.name}/{rel}")
    return SourceSet(pkg.key, pkg.license, mains, Resolver(mappings), inherited_licenses(pkg, licenses or {}))


def inherited_licenses(pkg: Package, licenses: dict[str, str]) -> dict[str, str]:
    """Unit path prefix -> the licence a file there without an SPDX line has: the package's for its own name, each
    dep's from ``licenses`` (key -> licence; "" when it is not there: unknown, so not permissive)."""
    return {f"{pkg.name}/": pkg.license,
            **{f"{d}/": licenses.get(f"{d}@{v}", "") for d, v in pkg.deps.items() if d != pkg.name}}


def folder_sources(folder: str | os.PathLike, license: str = "user") -> SourceSet:
    """A user folder of .sol files, or a Foundry/Hardhat project: remappings.txt / foundry.toml remappings,
    lib/<dep>/src (Foundry), node_modules/ (Hardhat) resolve non-relative imports."""
    root = paths.resolve(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"source folder not found: {root}")
    mappings: dict[str, Path] = {"": root}
    if (root / "node_modules").is_dir():
        mappings[""] = root  # imports like "@x/y/..." are tried under node_modules below
        for d in (root / "node_modules").iterdir():
            if d.name.startswith("@") and d.is_dir():
                for sub in d.iterdir():
                    mappings[f"{d.name}/{sub.name}/"] = sub
            elif d.is_dir():
                mappings[f"{d.name}/"] = d
    if (root / "lib").is_dir():
        for d in (root / "lib").iterdir():
            if d.is_dir():
                mappings[f"{d.name}/"] = d / "src" if (d / "src").is_dir() else d
    remap_lines = []
    if (root / "remappings.txt").is_file():
        remap_lines += (root / "remappings.txt").read_text().splitlines()
    if (root / "foundry.toml").is_file():
        remap_lines += re.findall(r'["\']([^"\'=]+=[^"\']+)["\']', (root / "foundry.toml").read_text())
    for line in remap_lines:
        line = line.split(":", 1)[-1].strip()  # drop context prefix "ctx:"
        if "=" in line:
            prefix, target = line.split("=", 1)
            mappings[prefix.strip()] = root / target.strip()
    skip = ("node_modules/", "lib/", "test/", "tests/", "script/", "cache/", "out/", "artifacts/")
    src_dirs = [d for d in ("src", "contracts") if (root / d).is_dir()]
    mains = []
    for f in sorted(root.rglob("*.sol")):
        rel = f.relative_to(root).as_posix()
        if src_dirs and not any(rel.startswith(d + "/") for d in src_dirs):
            continue
        if rel.startswith(skip):
            continue
        if has_concrete_contract(f.read_text(encoding="utf-8", errors="replace")):
            mains.append(rel)
    return SourceSet(root.name, license, mains, Resolver(mappings))


# -------------------------------------------------------------------------------------------------- compiling
@dataclasses.dataclass
class Unit:
    key: str             # cache key: sha256(version, input)
    label: str           # package@version or folder
    main: str            # unit path of the main file
    version: str
    setting: Setting
    input: dict
    not_utf8: str = ""   # its sources' bytes that are not UTF-8 ("A.sol line 3, column 25: byte 0xe9")

    @property
    def item(self) -> str:
        return f"{self.label}:{self.main}"

    def refused(self, detail: str) -> Reject:
        """solc refused the unit: a source that was not UTF-8 is the likely cause and is named first."""
        reason = "not_utf8" if self.not_utf8 else "compile_error"
        if self.not_utf8:
            detail = f"{self.not_utf8} is not UTF-8 (read as U+FFFD); solc: {detail}"
        return Reject(self.item, reason, detail[:300], package=self.label,
                      settings=f"{self.version}/{self.setting.name}")


def standard_input(sources: dict[str, str], main: str, setting: Setting, version: str) -> dict:
    sel = {p: {"": ["ast"]} for p in sources}
    sel[main] = {"": ["ast"], "*": ["evm.deployedBytecode.object", "evm.deployedBytecode.sourceMap",
                                    "evm.methodIdentifiers", "metadata"]}
    return {"language": "Solidity", "sources": {p: {"content": t} for p, t in sorted(sources.items())},
            "settings": {**setting.solc_settings(version), "outputSelection": sel}}


def plan_units(ss: SourceSet, settings: list[Setting], installed: list[str] | None = None,
               policy: str = "lowest") -> tuple[list[Unit], list[Reject]]:
    """Resolve each main file's imports, choose its compiler from the pragmas, make one unit per setting."""
    installed = installed if installed is not None else installed_solc()
    units, rejects = [], []
    for main in ss.mains:
        sources, missing = ss.resolver.closure(main)
        if missing:
            rejects.append(Reject(f"{ss.label}:{main}", "missing_import", ", ".join(sorted(set(missing))[:5]),
                                  package=ss.label))
            continue
        specs = [s for t in sources.values() for s in pragmas_of(t)]
        version = choose_version(specs, installed, policy)
        if version is None:
            rejects.append(Reject(f"{ss.label}:{main}", "no_compiler",
                                  f"pragmas {sorted(set(specs))} match none of the installed solc {installed}",
                                  package=ss.label))
            continue
        for st in settings:
            if not st.applies_to(version):
                continue
            inp = standard_input(sources, main, st, version)
            not_utf8 = "; ".join(f"{p} {ss.resolver.not_utf8[p]}" for p in sorted(sources) if p in ss.resolver.not_utf8)
            units.append(Unit(cache_key(version, inp), ss.label, main, version, st, inp, not_utf8))
    return units, rejects


def cache_key(version: str, standard_json: dict) -> str:
    """A compile's key in outputs/cache/solc: sha256 of (cache format, compiler version, standard-JSON input)."""
    return hashlib.sha256(json.dumps([CACHE_FORMAT, version, standard_json], sort_keys=True).encode()).hexdigest()


def _cache_path(key: str) -> Path:
    return paths.cache_dir() / "solc" / key[:2] / f"{key}.json.gz"


def load_cached(key: str) -> dict | None:
    p = _cache_path(key)
    if not p.exists():
        return None
    try:
        return json.loads(gzip.decompress(p.read_bytes()))
    except (OSError, ValueError, EOFError):
        return None  # a corrupt entry is recompiled


def _trim(unit: Unit, output: dict) -> dict:
    """Keep what alignment needs: per-contract runtime code/sourceMap/methodIdentifiers/evmVersion of the main file,
    every source's AST and id, and the errors."""
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    contracts = {}
    for name, c in (output.get("contracts", {}).get(unit.main) or {}).items():
        evm = c.get("evm", {})
        try:
            meta = json.loads(c.get("metadata") or "{}")
        except ValueError:
            meta = {}
        contracts[name] = {
            "bytecode": (evm.get("deployedBytecode") or {}).get("object", ""),
            "source_map": (evm.get("deployedBytecode") or {}).get("sourceMap", ""),
            "method_identifiers": evm.get("methodIdentifiers") or {},
            "evm_version": (meta.get("settings") or {}).get("evmVersion", ""),
        }
    sources = {p: {"id": s.get("id"), "ast": s.get("ast") or s.get("legacyAST")}
               for p, s in (output.get("sources") or {}).items()}
    return {"errors": [e.get("formattedMessage") or e.get("message", "") for e in errors],
            "contracts": contracts, "sources": sources}


def run_solcjs(version: str, inputs: list[tuple[str, dict]], timeout_s: float) -> dict[str, dict | str]:
    """Standard-JSON inputs through one node process of solcjs ``version`` (solc_compile.js): key -> solc's output
    dict, or key -> an error string ("solcjs: ..." when solc threw, "crash: ..." when the process died or hit
    ``timeout_s`` before that unit; the units finished before a crash are kept). Shared by the corpus compiles
    and tacsol.evaluate's compile check."""
    payload = json.dumps({"solc_dir": str(paths.node_modules() / f"solc-{version}"),
                          "units": [{"key": k, "input": inp} for k, inp in inputs]})
    res: dict[str, dict | str] = {}
    try:
        proc = subprocess.run(["node", "--max-old-space-size=3072", str(NODE_HELPER)], input=payload,
                              capture_output=True, text=True, timeout=timeout_s)
        out, err = proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err = f"timeout after {timeout_s:.0f}s"
    for line in out.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        res[rec["key"]] = rec.get("output") if "output" in rec else f"solcjs: {rec.get('error')}"
    for k, _ in inputs:
        res.setdefault(k, f"crash: {err.strip()[-300:]}")
    return res


def _run_batch(version: str, units: list[Unit], timeout_s: float) -> dict[str, dict | str]:
    """One node process for a batch; returns key -> output dict, or key -> error string."""
    return run_solcjs(version, [(u.key, u.input) for u in units], timeout_s * len(units))


def compile_units(units: list[Unit], *, workers: int = 2, batch_size: int = 6, timeout_s: float = 120.0,
                  retries: int = 1, progress: bool = True, deadline: float | None = None
                  ) -> tuple[dict[str, dict], list[Reject]]:
    """Compile (or load from cache) every unit. Returns key -> trimmed artifact and the rejects.
    ``deadline`` (time.time() value): batches not started by then are skipped (not rejected; a rerun compiles
    them), so a time-boxed build still writes a dataset from what is compiled."""
    import time

    from tqdm.auto import tqdm

    done: dict[str, dict] = {}
    rejects: list[Reject] = []
    todo = []
    for u in units:
        hit = load_cached(u.key)
        if hit is not None:
            done[u.key] = hit
        else:
            todo.append(u)
    by_version: dict[str, list[Unit]] = {}
    for u in todo:
        by_version.setdefault(u.version, []).append(u)
    batches = [vs[i:i + batch_size] for vs in by_version.values() for i in range(0, len(vs), batch_size)]
    lock = threading.Lock()
    bar = tqdm(total=len(units), initial=len(done), desc="compile", unit="unit", disable=not progress)

    def work(batch: list[Unit]) -> None:
        if deadline is not None and time.time() > deadline:
            with lock:
                bar.update(len(batch))
            return
        res = _run_batch(batch[0].version, batch, timeout_s)
        failed = [u for u in batch if not isinstance(res[u.key], dict)]
        for attempt in range(retries):  # a crashed batch: retry each unit alone (crash may be another unit's)
            if not failed:
                break
            again = []
            for u in failed:
                r = _run_batch(u.version, [u], timeout_s)
                res[u.key] = r[u.key]
                if not isinstance(r[u.key], dict):
                    again.append(u)
            failed = again
        for u in batch:
            r = res[u.key]
            with lock:
                if isinstance(r, dict):
                    art = _trim(u, r)
                    atomic_write_bytes(_cache_path(u.key), gzip.compress(json.dumps(art).encode(), 5))
                    done[u.key] = art
                elif r.startswith("crash") or "timeout" in r:
                    rejects.append(Reject(u.item, "compile_crash", r[:300], package=u.label,
                                          settings=f"{u.version}/{u.setting.name}"))
                else:
                    rejects.append(u.refused(r))
                bar.update(1)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as ex:
        for f in as_completed([ex.submit(work, b) for b in batches]):
            f.result()
    bar.close()
    for u in units:
        art = done.get(u.key)
        if art is not None and art["errors"]:
            rejects.append(u.refused(art["errors"][0]))
    return done, rejects


def fetch_all(pkgs: list[Package], progress: bool = True) -> tuple[dict[str, Path], list[Reject]]:
    """Fetch every manifest package (cached); a package that cannot be fetched is a reject, not an abort."""
    from tqdm.auto import tqdm

    roots, rejects = {}, []
    for p in tqdm(pkgs, desc="fetch", unit="pkg", disable=not progress):
        try:
            roots[p.key] = fetch_package(p)
        except Exception as exc:  # network, missing version: recorded, the build goes on
            rejects.append(Reject(p.key, "fetch_failed", str(exc)[:300], package=p.key))
    return roots, rejects


# ------------------------------------------------------------------------------------------ records' compile units
class UnitNotFound(LookupError):
    """A record's compile unit cannot be rebuilt here; the message says why."""


class RecordUnits:
    """The compile unit a dataset record came from, read off its columns: `package` (its sources from the manifest
    and the npm cache; `fetch=True` downloads a missing one), `unit_main` (records built before it: the main file of
    `contract_key`, else a main file declaring the contract), `solc_version` and the build setting of `settings`.
    `bundle` ("package|main" -> {unit path: text}) answers first: the shipped sample's test units."""

    def __init__(self, *, manifest: str | os.PathLike | None = None, fetch: bool = False,
                 bundle: dict[str, dict[str, str]] | None = None):
        self.manifest, self.fetch, self.bundle = manifest, fetch, bundle or {}
        self._packages: dict[str, Package] | None = None
        self._sets: dict[str, SourceSet | str] = {}
        self._closures: dict[tuple[str, str], dict[str, str] | None] = {}

    def source_set(self, package: str) -> SourceSet:
        if package not in self._sets:
            self._sets[package] = self._load(package)
        got = self._sets[package]
        if isinstance(got, str):
            raise UnitNotFound(got)
        return got

    def _load(self, package: str) -> SourceSet | str:
        """The package's source set, or why there is none."""
        if self._packages is None:
            self._packages = {p.key: p for p in load_manifest(self.manifest)}
        pkg = self._packages.get(package)
        if pkg is None:
            return f"package {package!r} not in the corpus manifest"
        roots = {}
        try:
            for key in [package] + [f"{d}@{v}" for d, v in pkg.deps.items()]:
                p = self._packages.get(key)
                if p is not None and (self.fetch or is_fetched(p)):
                    roots[key] = fetch_package(p)
        except Exception as exc:  # noqa: BLE001  network or npm: the record's unit is not found, with the reason
            return f"{type(exc).__name__}: {exc}"[:200]
        if package not in roots:
            return f"{package} not in outputs/cache/npm (fetch=True fetches it)"
        return package_sources(pkg, roots, {k: p.license for k, p in self._packages.items()})

    def closure(self, package: str, main: str) -> dict[str, str] | None:
        """{unit path: text} of `main` and its imports in the package, None when an import is missing."""
        if (package, main) not in self._closures:
            srcs, missing = self.source_set(package).resolver.closure(main)
            self._closures[(package, main)] = None if missing else srcs
        return self._closures[(package, main)]

    @staticmethod
    def main_of(rec: dict) -> str:
        if rec.get("unit_main"):
            return rec["unit_main"]
        key = rec.get("contract_key") or ""   # package:main file below the package name:contract
        return key.split(":", 1)[1].rsplit(":", 1)[0] if key.count(":") >= 2 else ""

    def sources(self, rec: dict) -> tuple[str, dict[str, str]]:
        """(main file, {unit path: text}) of the record's compile unit; raises UnitNotFound."""
        pkg, main = rec.get("package") or "", self.main_of(rec)
        hit = self.bundle.get(f"{pkg}|{main}") if main else None
        if hit is not None:
            return main, hit
        ss = self.source_set(pkg)
        if main:
            mains = [m for m in ss.mains if m == main or m.endswith("/" + main)]
        else:
            declares = re.compile(rf"\b(contract)\s+{re.escape(rec.get('contract') or '?')}\b")
            mains = [m for m in ss.mains if declares.search(ss.resolver.text(m) or "")]
        for m in mains:
            srcs = self.closure(pkg, m)
            if srcs is not None and rec.get("file") in srcs:
                return m, srcs
        raise UnitNotFound(f"no compile unit of {pkg} from {main or 'a main file declaring ' + repr(rec.get('contract'))}"
                           f" holds {rec.get('file')!r}")

    def file_licenses(self, rec: dict) -> list[FileLicense]:
        """The licence of every source of the record's compile unit (files without an SPDX line: their package's,
        from the manifest); raises UnitNotFound."""
        main, srcs = self.sources(rec)
        if self._packages is None:
            self._packages = {p.key: p for p in load_manifest(self.manifest)}
        pkg = self._packages.get(rec.get("package") or "")
        if pkg is None:
            raise UnitNotFound(f"package {rec.get('package')!r} not in the corpus manifest")
        ss = SourceSet(pkg.key, pkg.license, [main], Resolver({}),
                       inherited_licenses(pkg, {k: p.license for k, p in self._packages.items()}))
        return ss.file_licenses(srcs)

    def artifact(self, rec: dict) -> dict:
        """The dataset build's compile of the record's unit, from outputs/cache/solc (nothing is compiled here);
        raises UnitNotFound."""
        main, srcs = self.sources(rec)
        version = rec.get("solc_version") or ""
        for setting in build_settings(rec.get("settings") or ""):
            art = load_cached(cache_key(version, standard_input(srcs, main, setting, version)))
            if art is not None:
                return art
        raise UnitNotFound("compile unit not in outputs/cache/solc")


def build_settings(label: str) -> list[Setting]:
    """The build settings a record's settings label ("0.8.16/opt200/london") may stand for: as named, then with the
    label's EVM version pinned (the label shows solc's default EVM version too, so it cannot tell which)."""
    parts = label.split("/")
    if len(parts) < 2 or parts[1] == "imported":
        raise UnitNotFound(f"settings {label!r} do not name a build setting")
    pinned = [Setting.parse(f"{parts[1]}@{parts[2]}")] if len(parts) > 2 and parts[2] not in ("", "default") else []
    return [Setting.parse(parts[1])] + pinned
