"""Where a record's weights file is found, sha256-checked: the package's folder, the
cache (``$KZOO_HOME/weights``, else ``~/.keras/models``), a download from
``$KZOO_WEIGHTS_URL`` (else ``DEFAULT_BASE_URL``). A file whose sha256 differs from the
record's is never returned, and the two environment variables are checked before they
are used, each error naming the variable."""

import hashlib
import os
import urllib.parse

DEFAULT_BASE_URL = "https://github.com/kzoo-dev/kzoo/releases/download/weights-v1/"
HOME_VAR, URL_VAR = "KZOO_HOME", "KZOO_WEIGHTS_URL"
# What keras.utils.get_file (urllib's urlretrieve) downloads from.
SCHEMES = ("https", "http", "ftp", "file")


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_dir():
    """(cache_dir, cache_subdir) of downloaded weights, as keras.utils.get_file takes them;
    a ``$KZOO_HOME`` that is (or lies under) a file is refused naming it."""
    home = os.environ.get(HOME_VAR)
    if not home:
        return os.path.join(os.path.expanduser("~"), ".keras"), "models"
    home = os.path.abspath(os.path.expanduser(home))
    probe = os.path.join(home, "weights")
    while not os.path.exists(probe) and os.path.dirname(probe) != probe:
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise ValueError(
            f"${HOME_VAR}={os.environ[HOME_VAR]!r}: {probe!r} is a file, not a directory; kzoo keeps "
            f"downloaded weights in ${HOME_VAR}/weights: point it at a directory, or unset it "
            "(~/.keras/models)"
        )
    return home, "weights"


def base_url():
    """``$KZOO_WEIGHTS_URL`` (else ``DEFAULT_BASE_URL``), refused naming the variable when
    it is not a URL kzoo can download from."""
    url = os.environ.get(URL_VAR)
    if not url:
        return DEFAULT_BASE_URL
    parts = urllib.parse.urlsplit(url)
    problem = (
        "it has no scheme (such as https://)"
        if "://" not in url
        else f"its scheme {parts.scheme!r} is none of {', '.join(SCHEMES)}"
        if parts.scheme.lower() not in SCHEMES
        else "it names no host"
        if parts.scheme.lower() != "file" and not parts.netloc
        else "it names no folder"
        if parts.scheme.lower() == "file" and not parts.path
        else None
    )
    if problem:
        raise ValueError(
            f"${URL_VAR}={url!r} is not a URL kzoo can download weights from: {problem}. Set it to "
            "the folder that holds the weights files, e.g. https://host/path/ or file:///abs/folder/"
        )
    return url


def weights_file(record, package_dir):
    """A local copy of ``record``'s weights whose sha256 is the record's: ``package_dir``'s,
    the cache's, or a fresh download into the cache. A file that does not match is never
    returned; nothing found is a FileNotFoundError saying where kzoo looked."""
    import keras

    directory, subdir = cache_dir()  # both variables checked before any file is looked at
    url = base_url().rstrip("/") + "/" + record.file
    looked = []
    package = os.path.join(package_dir, record.file)
    if os.path.exists(package):
        got = sha256(package)
        if got != record.sha256:
            raise ValueError(
                f"the weights file {package!r} of {record.tag} has sha256 {got}, not the "
                f"published {record.sha256}: it was changed after publication and is refused "
                "(reinstall kzoo)"
            )
        return package
    looked.append(f"{package} (not there)")
    cached = os.path.join(directory, subdir, record.file)
    if os.path.exists(cached):
        if sha256(cached) == record.sha256:
            return cached
        looked.append(f"{cached} (wrong sha256, refused; downloading again)")
    else:
        looked.append(f"{cached} (not there)")
    _make_cache(directory, subdir)
    try:
        path = keras.utils.get_file(
            record.file,
            url,
            file_hash=record.sha256,
            hash_algorithm="sha256",
            cache_dir=directory,
            cache_subdir=subdir,
        )
    except ValueError as err:  # keras' checksum refusal; it leaves the file in place
        _remove_unverified(cached, record)
        raise ValueError(
            f"the download of {url} for {record.tag} does not have the published sha256 "
            f"{record.sha256}: refused, and not kept ({err})"
        ) from err
    except Exception as err:  # urllib's errors, which keras re-raises as Exception
        _remove_unverified(cached, record)
        raise FileNotFoundError(
            f"no weights file for {record.tag}: kzoo looked in "
            + "; ".join(looked)
            + f"; and downloading {url} failed ({err}). Set ${URL_VAR} to where the "
            "weights are, or put the file in the cache"
        ) from err
    return path  # get_file checked file_hash (a mismatch is the ValueError above)


def _make_cache(directory, subdir):
    """The cache folder, made before the download: keras falls back to /tmp/.keras for
    one that does not exist yet. An error names ``$KZOO_HOME`` when it is set."""
    folder = os.path.join(directory, subdir)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as err:
        where = f"${HOME_VAR}={os.environ[HOME_VAR]!r}" if os.environ.get(HOME_VAR) else "the cache"
        raise PermissionError(
            f"cannot make the weights cache {folder!r} ({where}): {err.strerror or err}; set ${HOME_VAR} "
            "to a folder you can write"
        ) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        where = f" (${HOME_VAR})" if os.environ.get(HOME_VAR) else ""
        raise PermissionError(
            f"cannot download into the weights cache {folder!r}{where}: it is not writable; set "
            f"${HOME_VAR} to a folder you can write"
        )


def _remove_unverified(path, record):
    """Remove ``path`` unless it is ``record``'s verified file: a refused file never stays
    where the next lookup would find it."""
    if os.path.exists(path) and sha256(path) != record.sha256:
        os.remove(path)
