"""USB bundles from a page: upload one to import it, download one to carry it (the CLI's checks and words).

`import_upload` saves the uploaded file in a temporary folder under its own
(sanitised) name, imports it through the node exactly as `import-bundle` does
(every batch verified like a sync; importing twice changes nothing), and
returns the CLI's Chinese line, or the CLI's error with the file named as the
person knows it. `bundle_download` writes what a node lacks into a temporary
file and sends it as a download.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Any, Protocol

from flask import send_file
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired

from sync_protocol.errors import SyncError
from sync_protocol.verify import Verdict

from ..bundles import import_report


class BundleNode(Protocol):
    def import_bundle(self, path: Path) -> list[Verdict]: ...

    def export_bundle(self, path: Path, *, for_node: str | None = None) -> int: ...


class ImportForm(FlaskForm):  # type: ignore[misc]
    bundle = FileField("数据包文件（.sjb）", validators=[FileRequired("请选择要导入的数据包文件")])


def upload_name(uploaded: str | None) -> str:
    """The uploaded file's own name (no folders, no control characters), or 数据包.sjb."""
    base = (uploaded or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(c for c in base if c.isprintable() and c not in '<>:"|?*').strip(" .")
    return base[:120] or "数据包.sjb"


def import_upload(node: BundleNode, upload: Any) -> tuple[bool, str]:
    """Import an uploaded bundle: (True, 已导入 … 新增 n 条), or (False, the same and the quarantine warning),
    or (False, 错误: … 建议: …)."""
    shown = upload_name(upload.filename)
    with tempfile.TemporaryDirectory(prefix="sanji-bundle-") as tmp:
        path = Path(tmp) / shown
        upload.save(path)
        try:
            verdicts = node.import_bundle(path)
        except SyncError as e:  # the CLI's words, naming the file as the person knows it
            message = e.for_people.replace(str(path), shown)
            return False, f"错误: {message}" + (f"。建议: {e.hint}" if e.hint else "")
    report, text = import_report(shown, verdicts)
    return (False, f"{text}{report['problem']}") if report["problem"] else (True, text)


def import_posted(node: BundleNode) -> list[tuple[str, str]]:
    """The posted `ImportForm`'s bundle imported: the flash messages to show, as (category, text)."""
    form = ImportForm()
    if not form.validate_on_submit():
        return [("error", str(e)) for errors in form.errors.values() for e in errors]
    ok, text = import_upload(node, form.bundle.data)
    return [("success" if ok else "error", text)]


def bundle_download(node: BundleNode, name: str, *, for_node: str | None = None) -> Any:
    """A bundle of what `for_node` (default: the parent) lacks, sent as a file download named `name`."""
    with tempfile.TemporaryDirectory(prefix="sanji-bundle-") as tmp:
        path = Path(tmp) / "bundle.sjb"
        node.export_bundle(path, for_node=for_node)
        data = path.read_bytes()
    return send_file(io.BytesIO(data), mimetype="application/octet-stream", as_attachment=True, download_name=name)
