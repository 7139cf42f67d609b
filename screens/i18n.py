"""Every word the desk UI shows, in English and Chinese (pure: no Textual).

One key (F2) switches the language everywhere: screens re-render from these strings when the
app's ``lang`` changes. Key-bar labels are keys too (``Binding.description`` holds the key).
Messages from the core (:class:`kiosk.errors.KioskError` texts, role reasons) stay in English:
they name files and settings that are English anyway.
"""

from __future__ import annotations

LANGUAGES = ("en", "zh")

#: key -> (English, Chinese). ``{name}`` fields are filled by :func:`t`.
STRINGS: dict[str, tuple[str, str]] = {
    # --- the frame: title, cloud status, key bar ------------------------------------------
    "app.title": ("MedPass Kiosk", "MedPass 医疗影像服务台"),
    "sync.online": ("Cloud online", "云端在线"),
    "sync.offline": ("Cloud offline", "云端离线"),
    "sync.error": ("Cloud error", "云端错误"),
    "sync.disabled": ("No cloud: local only", "未配置云端：仅本机"),
    "sync.unknown": ("Cloud …", "云端 …"),
    "sync.outbox": ("{n} to upload", "待上传 {n}"),
    "sync.failed": ("{n} failed", "失败 {n}"),
    "k.lang": ("中文", "English"),
    "k.quit": ("Quit", "退出"),
    "k.admin": ("Admin", "管理"),
    "k.open_case": ("Open case", "打开病例"),
    "k.find": ("Find case", "查找病例"),
    "k.demo_disc": ("Insert sample disc", "插入示例光盘"),
    "k.demo_disc2": ("Insert 2nd disc", "插入第二张光盘"),
    "k.demo_stick": ("Insert patient's stick", "插入患者U盘"),
    "k.cancel": ("Cancel", "取消"),
    "k.continue": ("Continue", "继续"),
    "k.files": ("Skipped files", "未导入文件"),
    "k.password": ("Archive password", "压缩包密码"),
    "k.home": ("Home", "首页"),
    "k.back": ("Back", "返回"),
    "k.confirm_id": ("Confirm identity", "确认身份"),
    "k.toggle_patient": ("This person?", "是否本人"),
    "k.reports": ("Reports", "报告"),
    "k.add_disc": ("Add another disc", "添加光盘"),
    "k.export": ("Export to stick", "导出到U盘"),
    "k.stop_waiting": ("Stop waiting", "停止等待"),
    "k.attach": ("Attach PDF from disc", "附加光盘PDF"),
    "k.check_now": ("Check translations", "检查翻译"),
    "k.write": ("Write", "写入"),
    "k.unencrypted": ("Unencrypted…", "不加密…"),
    "k.encrypted": ("Encrypt", "加密"),
    "k.use_anyway": ("Use this stick anyway", "仍使用此U盘"),
    "k.print": ("Print slip", "打印凭条"),
    "k.finish": ("Finished", "完成"),
    "k.ok": ("OK", "确定"),
    "k.yes": ("Yes", "是"),
    "k.no": ("No", "否"),
    "k.submit": ("Confirm", "确认"),
    "k.next_field": ("Next field", "下一项"),
    "k.switch_kind": ("Original/translation", "原文/译文"),
    "k.select": ("Select", "选择"),
    "k.settings": ("Settings", "设置"),
    "k.queue": ("Sync queue", "同步队列"),
    "k.purge_tab": ("Purge", "清除"),
    "k.logs": ("Logs", "日志"),
    "k.retry": ("Retry failed", "重试失败项"),
    "k.sync_now": ("Sync now", "立即同步"),
    "k.purge": ("Purge case", "清除病例"),
    "k.leave": ("Leave admin", "退出管理"),
    "k.shutdown": ("Quit the kiosk program", "退出本程序"),
    "k.change_pin": ("Change PIN", "修改密码"),
    "k.later": ("Later", "稍后"),
    # --- values -------------------------------------------------------------------------
    "sex.F": ("female", "女"),
    "sex.M": ("male", "男"),
    "sex.O": ("other", "其他"),
    "status.complete": ("verified", "已校验"),
    "status.incomplete": ("incomplete", "不完整"),
    "status.delivered": ("delivered", "已交付"),
    "state.missing": ("missing", "缺失"),
    "state.pending": ("pending", "待上传"),
    "state.synced": ("synced", "已同步"),
    "source.medium": ("the disc", "光盘"),
    "source.inbox": ("office inbox", "办公室收件箱"),
    "source.dicomweb": ("office server", "办公室服务器"),
    "source.coordinator": ("coordinator", "协调员"),
    "col.case": ("Case", "病例号"),
    "col.time": ("Time", "时间"),
    "col.images": ("Images", "影像"),
    "col.mod": ("Mod.", "类型"),
    "col.status": ("Status", "状态"),
    "col.date": ("Date", "日期"),
    "col.desc": ("Description", "描述"),
    "col.series": ("Series", "序列"),
    "col.patient": ("Patient", "患者"),
    "col.pid": ("ID", "编号"),
    "col.dob": ("Born", "出生日期"),
    "col.decision": ("This person?", "是否本人"),
    "col.job": ("Job", "任务"),
    "col.state": ("State", "状态"),
    "col.progress": ("Done", "进度"),
    "col.error": ("Last error", "最近错误"),
    "col.file": ("File", "文件"),
    "col.reason": ("Reason", "原因"),
    # --- Home -----------------------------------------------------------------------------
    "home.title": ("Start", "开始"),
    "home.insert": ("Insert the hospital disc or USB stick", "请插入医院光盘或U盘"),
    "home.insert_sub": ("The kiosk finds every image on it, copies and verifies it. Nothing on "
                        "the disc is changed.",
                        "本机会找出其中所有影像，复制并校验。光盘上的内容不会被修改。"),
    "home.today": ("Cases, newest first", "病例（最新在前）"),
    "home.none_today": ("No cases yet.", "还没有病例。"),
    "home.find_placeholder": ("/ Find a case: number, name or date",
                              "/ 查找病例：编号、姓名或日期"),
    "home.found": ("Cases matching \u201c{text}\u201d", "符合\u201c{text}\u201d的病例"),
    "home.none_found": ("No case matches \u201c{text}\u201d.",
                        "没有符合\u201c{text}\u201d的病例。"),
    "home.count": ("{shown} of {total}", "{shown} / {total}"),
    "home.stick_first": ("That is an empty USB stick. Insert the hospital disc first: the "
                         "patient's stick comes at the end.",
                         "这是一个空U盘。请先插入医院光盘：患者的U盘在最后一步使用。"),
    "home.unknown_title": ("This medium cannot be used", "无法使用此介质"),
    "home.unknown_text": ("{label}: {reason}. Check that it is the hospital's imaging disc or "
                          "stick, or try it in another drive. A disc of pictures or a viewer "
                          "without DICOM images cannot be used: ask the hospital for a DICOM "
                          "export of the study.",
                          "{label}：{reason}。请确认这是医院的影像光盘或U盘，或换一个光驱再试。"
                          "只有图片或看图程序而没有 DICOM 影像的光盘无法使用：请向医院索取该检查的"
                          " DICOM 格式导出。"),
    # --- Import ---------------------------------------------------------------------------
    "import.title": ("Importing", "正在导入"),
    "import.from": ("Reading {label}", "正在读取 {label}"),
    "import.phase.counting": ("Looking for files…", "正在查找文件…"),
    "import.phase.copying": ("Copying and checking images…", "正在复制并检查影像…"),
    "import.phase.verifying": ("Verifying the copies…", "正在核对副本…"),
    "import.phase.saving": ("Saving the case…", "正在保存病例…"),
    "import.phase.done": ("Done", "完成"),
    "import.files": ("Files   {done} of {total}", "文件   {done} / {total}"),
    "import.bytes": ("Data    {done} of {total}", "数据   {done} / {total}"),
    "import.speed": ("Speed   {rate:.1f} MB/s", "速度   {rate:.1f} MB/s"),
    "import.eta": ("Left    {eta}", "剩余   {eta}"),
    "import.eta_unknown": ("Left    estimating…", "剩余   估算中…"),
    "import.current": ("Now     {path}", "当前   {path}"),
    "import.cancelling": ("Cancelling…", "正在取消…"),
    "import.cancelled_title": ("Import cancelled", "导入已取消"),
    "import.cancelled_text": ("Nothing was added to a case. Insert the disc again to start over.",
                              "没有向任何病例添加内容。重新插入光盘即可重新开始。"),
    # --- Review ---------------------------------------------------------------------------
    "review.title": ("Review", "核对"),
    "review.verified_ok": ("✓ All {n} images copied and verified", "✓ 全部 {n} 张影像已复制并校验"),
    "review.verified_bad": ("✗ Verification found {n} problem(s): the case is not complete",
                            "✗ 校验发现 {n} 个问题：病例不完整"),
    "review.incomplete": ("⚠ Import incomplete: {error}", "⚠ 导入不完整：{error}"),
    "review.counts": ("{found} images · {new} new · {dup} already in the case · {size}",
                      "{found} 张影像 · 新增 {new} · 病例中已有 {dup} · {size}"),
    "review.patients": ("Patients on this medium", "介质中的患者"),
    "review.patient_line": ("{name}   ID {pid}   born {dob}   {sex}",
                            "{name}   编号 {pid}   出生 {dob}   {sex}"),
    "review.several": ("⚠ {n} different patients: you decide for each on the next screen.",
                       "⚠ 含 {n} 位不同患者：请在下一步逐一确认。"),
    "review.studies": ("Studies and series", "检查和序列"),
    "review.warnings": ("Warnings", "警告"),
    "review.problems": ("Problems", "问题"),
    "review.skipped": ("{rejected} file(s) rejected (unreadable DICOM), {ignored} not DICOM "
                       "(ignored): press F to see them.",
                       "{rejected} 个文件被拒绝（无法读取的DICOM），{ignored} 个非DICOM文件"
                       "（已忽略）：按 F 查看。"),
    "review.dicomdir": ("DICOMDIR: {records} records, {missing} missing, {unlisted} not listed",
                        "DICOMDIR：{records} 条记录，缺失 {missing}，未列出 {unlisted}"),
    "review.no_dicomdir": ("No DICOMDIR on this medium: every file was searched.",
                           "介质上没有 DICOMDIR：已搜索全部文件。"),
    # Scan limits on untrusted media (kiosk/sources/scan_limits.py).
    "review.stopped_files": ("⚠ Import incomplete: the medium holds more than {n} files, the "
                             "limit. The first {n} were read and verified; the others were not "
                             "imported.",
                             "⚠ 导入不完整：介质中的文件超过上限 {n} 个。前 {n} 个文件已读取并"
                             "校验，其余未导入。"),
    "review.stopped_time": ("⚠ Import incomplete: reading the medium took longer than {time}, "
                            "the limit. What was read is stored and verified; the rest was not "
                            "imported.",
                            "⚠ 导入不完整：读取介质超过时间上限 {time}。已读取的内容已保存并校验，"
                            "其余未导入。"),
    "review.too_deep": ("{count} folder(s) nested more than {n} levels deep were not searched "
                        "(limit).",
                        "{count} 个嵌套超过 {n} 层的文件夹未被搜索（超出上限）。"),
    "review.too_large": ("{count} DICOM file(s) larger than {size} were not copied (limit).",
                         "{count} 个大于 {size} 的 DICOM 文件未被复制（超出上限）。"),
    # Zip archives on the medium (kiosk/sources/archive.py).
    "review.archives": ("{n} zip archive(s) on this medium: {imported} image(s) imported from "
                        "them.",
                        "介质中有 {n} 个压缩包：已从中导入 {imported} 张影像。"),
    "review.archive_problem": ("Archive {path}: not read ({code}).",
                               "压缩包 {path}：未能读取（{code}）。"),
    "review.locked": ("🔒 {n} file(s) in {names} are encrypted and were not imported: the "
                      "password is needed. Press P to type it (hospitals often use the "
                      "patient's birth date).",
                      "🔒 {names} 中有 {n} 个加密文件未导入：需要密码。按 P 输入密码（医院常用"
                      "患者的出生日期）。"),
    "review.locked_wrong": ("🔒 The password did not open {n} file(s) in {names}; they were not "
                            "imported. Press P to try another.",
                            "🔒 密码无法打开 {names} 中的 {n} 个文件，这些文件未导入。按 P 换一个"
                            "密码重试。"),
    "archive.code.damaged": ("damaged or cut off", "已损坏或不完整"),
    "archive.code.limit": ("past a limit", "超出上限"),
    "archive.code.unsupported": ("a kind the kiosk does not open", "本机无法打开的类型"),
    "archive_pw.title": ("Password of the encrypted archive", "加密压缩包的密码"),
    "archive_pw.text": ("{n} file(s) in {names} are encrypted. Type the password the hospital "
                        "gave (often the patient's birth date, such as 19800131) and press Enter: "
                        "the medium is imported again into the same case, and nothing already "
                        "imported is copied twice.",
                        "{names} 中有 {n} 个文件已加密。请输入医院提供的密码（常为患者出生日期，"
                        "如 19800131），然后按 Enter：将重新导入该介质到同一病例，已导入的文件"
                        "不会重复复制。"),
    "archive_pw.wrong": ("That password did not open them. Try another, or press Esc to go on "
                         "without them.",
                         "该密码无法打开这些文件。请换一个密码，或按 Esc 不导入它们继续。"),
    "archive_pw.empty": ("Type the password first.", "请先输入密码。"),
    "files.title": ("Files not imported", "未导入的文件"),
    "files.rejected": ("Rejected: looked like DICOM but could not be read",
                       "已拒绝：像DICOM但无法读取"),
    "files.ignored": ("Ignored: not DICOM", "已忽略：非DICOM"),
    "files.none": ("None.", "无。"),
    "nothing.title": ("No images found", "未找到影像"),
    "nothing.text": ("No DICOM images were found on {label} ({ignored} other files). Check that "
                     "it is the imaging disc and not only the report, then insert it again.",
                     "在 {label} 上没有找到DICOM影像（其他文件 {ignored} 个）。请确认这是影像光盘"
                     "而不只是报告，然后重新插入。"),
    # --- Case -----------------------------------------------------------------------------
    "case.title": ("Case {case}", "病例 {case}"),
    "case.summary": ("{n} images in {studies} studies ({mods}) · {status}",
                     "{n} 张影像，{studies} 项检查（{mods}）· {status}"),
    "case.patients": ("Patients in this case", "本病例中的患者"),
    "decision.yes": ("✓ this person", "✓ 本人"),
    "decision.no": ("✗ someone else", "✗ 其他人"),
    "decision.unset": ("? decide (T)", "? 待确认 (T)"),
    "case.several_help": ("Several patients are in this case. Select each row and press T: the "
                          "person in front of you, or someone else (moved to a separate case).",
                          "本病例中有多位患者。请选中每一行并按 T：面前的患者本人，"
                          "或其他人（移至单独病例）。"),
    "case.identity_none": ("Identity not confirmed: press C and check the passport.",
                           "身份尚未确认：请按 C 并核对护照。"),
    "case.identity_ok": ("✓ Confirmed: {name}, born {dob}", "✓ 已确认：{name}，出生 {dob}"),
    "case.reports": ("Reports: original {orig} · translation {trans}",
                     "报告：原文 {orig} · 译文 {trans}"),
    "case.need_identity": ("Confirm the identity first (C).", "请先确认身份（C）。"),
    "case.need_decisions": ("Decide for every patient first (T).", "请先为每位患者做出选择（T）。"),
    "case.need_one": ("At least one patient must be the person in front of you.",
                      "至少要有一位患者是面前的本人。"),
    "case.waiting": ("Insert the next disc or USB stick of this patient. Its images are added to "
                     "this case: studies merged, duplicates counted.",
                     "请插入该患者的下一张光盘或U盘。影像将加入本病例：按检查合并，重复的只计数。"),
    "case.split_done": ("Moved {n} patient(s) to a separate case {case}.",
                        "已将 {n} 位患者移至单独病例 {case}。"),
    "id.title": ("Confirm whose images these are", "确认影像所属患者"),
    "id.help": ("Compare with the passport. Names on the disc are the hospital's spelling.",
                "请与护照核对。光盘上的姓名是医院的拼写。"),
    "id.on_disc": ("On the disc: {names}", "光盘上：{names}"),
    "id.name": ("Name as in the passport", "护照上的姓名"),
    "id.dob": ("Date of birth (YYYY-MM-DD)", "出生日期（YYYY-MM-DD）"),
    "id.case": ("Case number: {case} (check it matches the paperwork)",
                "病例号：{case}（请与文件核对）"),
    # --- Reports --------------------------------------------------------------------------
    "reports.title": ("Reports", "报告"),
    "reports.original": ("Original report (Chinese)", "原始报告（中文）"),
    "reports.translation": ("Translation (English)", "翻译报告（英文）"),
    "reports.help": ("missing: not on this kiosk yet · pending: on this kiosk and goes onto the "
                     "patient's stick, not uploaded yet · synced: in the cloud too",
                     "缺失：本机尚无 · 待上传：已在本机，会写入患者U盘，尚未上传 · "
                     "已同步：云端也已有"),
    "reports.item": ("{title} · from {source} · {time}", "{title} · 来自{source} · {time}"),
    "reports.certified": ("certified", "已认证"),
    "reports.none_found": ("No PDF on the inserted media. Insert the hospital disc again, then "
                           "press A.", "已插入的介质中没有PDF。请重新插入医院光盘，然后按 A。"),
    "reports.pick_title": ("Attach a PDF found on the disc", "附加光盘中的PDF"),
    "reports.as_original": ("Attach as: Chinese original", "附加为：中文原始报告"),
    "reports.as_translation": ("Attach as: English translation", "附加为：英文翻译"),
    "reports.attached": ("Attached: {title}", "已附加：{title}"),
    "reports.checking": ("Looking for new translations…", "正在查找新的翻译…"),
    # --- Export ---------------------------------------------------------------------------
    "export.title": ("Patient's USB stick", "患者U盘"),
    "export.insert": ("Insert the patient's own USB stick", "请插入患者自己的U盘"),
    "export.insert_sub": ("An encrypted copy of the images and reports is written to it and "
                          "read back. Other files on it are left alone.",
                          "将写入加密的影像和报告副本并回读校验。U盘上的其他文件不会被改动。"),
    "export.source_ignored": ("{label} holds DICOM images: it is treated as a hospital medium "
                              "and never written to.",
                              "{label} 含有DICOM影像：视为医院介质，不会写入。"),
    "export.override_title": ("Write to this stick?", "写入此U盘？"),
    "export.override_text": ("It holds DICOM images, so the kiosk took it for a hospital "
                             "medium. If it is the patient's own stick, the copy goes into a "
                             "new folder beside its files: nothing on it is changed or deleted.",
                             "其中含有DICOM影像，因此本机把它当作医院介质。如果这是患者自己的U盘，"
                             "副本会写入新文件夹，与原有文件并存：不会修改或删除任何内容。"),
    "export.preparing": ("Opening the stick…", "正在打开U盘…"),
    "export.ready": ("Ready to write", "准备写入"),
    "export.stick": ("Stick:    {label} — {free} free", "U盘：   {label} — 可用 {free}"),
    "export.needed": ("Package:  about {needed}: {n} images and the reports",
                      "数据包： 约 {needed}：{n} 张影像及报告"),
    "export.others": ("The stick already holds {n} file(s) or folder(s): they are not changed.",
                      "U盘中已有 {n} 个文件或文件夹：不会被改动。"),
    "export.no_space": ("Not enough space: {free} free, about {needed} needed. Use a larger "
                        "stick, or free space on it and insert it again.",
                        "空间不足：可用 {free}，约需 {needed}。请换更大的U盘，"
                        "或释放空间后重新插入。"),
    "export.mode_enc": ("Encrypted (AES-256 zip; the passphrase comes on the next screen)",
                        "加密（AES-256 压缩包；密码在下一屏显示）"),
    "export.mode_plain": ("NOT encrypted: the patient agreed", "不加密：患者已同意"),
    "export.press_enter": ("Press Enter to write.", "按 Enter 开始写入。"),
    "export.phase.checking": ("Checking the stick…", "正在检查U盘…"),
    "export.phase.writing": ("Writing…", "正在写入…"),
    "export.phase.verifying": ("Reading back and verifying…", "正在回读校验…"),
    "export.phase.done": ("Done", "完成"),
    "export.progress": ("{done} of {total} · {rate:.1f} MB/s",
                        "{done} / {total} · {rate:.1f} MB/s"),
    "export.remove": ("✓ Written and verified. Remove the stick now.",
                      "✓ 已写入并校验。请拔出U盘。"),
    "export.remove_sub": ("Press Enter if the stick stays in.", "如暂不拔出U盘，请按 Enter。"),
    "consent.title": ("Write an unencrypted copy?", "写入不加密的副本？"),
    "consent.text": ("Anyone who finds the stick can then see the images. Only with the "
                     "patient's consent. Did the patient agree?",
                     "任何拿到U盘的人都能看到影像。仅在患者同意时使用。患者是否同意？"),
    # --- Done -----------------------------------------------------------------------------
    "done.title": ("Done", "完成"),
    "done.scan": ("Scan to view your images and reports online", "扫码在线查看您的影像和报告"),
    "done.valid": ("Link valid until {date}; it works once the upload is done.",
                   "链接有效期至 {date}；上传完成后即可打开。"),
    "done.passphrase": ("USB passphrase", "U盘密码"),
    "done.passcode": ("Link passcode: {code} (the page asks for it)",
                      "链接密码：{code}（打开时需输入）"),
    "done.once": ("Shown only now: write it down or print the slip. It is stored nowhere.",
                  "仅此一次显示：请记下或打印凭条。密码不会被保存。"),
    "done.howto": ("Open OPEN_IMAGES.html on the stick in any browser and type the "
                   "passphrase (7-Zip or Keka open it too).",
                   "用任意浏览器打开U盘中的 OPEN_IMAGES.html，输入密码"
                   "（也可用 7-Zip 或 Keka 打开）。"),
    "done.plain": ("The stick is NOT encrypted (patient consent recorded).",
                   "U盘未加密（已记录患者同意）。"),
    "done.countdown": ("This screen clears in {s} s.", "本页面将在 {s} 秒后清除。"),
    "done.printed": ("Slip printed.", "凭条已打印。"),
    "done.printing": ("Printing…", "正在打印…"),
    "done.qr_small": ("The window is too small for the QR code ({w}×{h} needed): enlarge it, or "
                      "use the printed slip.",
                      "窗口太小，无法显示二维码（需要 {w}×{h}）：请放大窗口，或使用打印凭条。"),
    # --- Admin ----------------------------------------------------------------------------
    "pin.title": ("Coordinator PIN", "协调员密码"),
    "pin.prompt": ("Type the PIN and press Enter.", "输入密码后按 Enter。"),
    "pin.purpose.admin": ("To open Admin.", "用于进入管理。"),
    "pin.purpose.unencrypted_export": ("To allow an unencrypted copy on the patient's stick.",
                                       "用于允许向患者U盘写入不加密的副本。"),
    "pin.purpose.force_purge": ("To purge case {case}, which is not uploaded yet.",
                                "用于清除尚未上传的病例 {case}。"),
    "pin.purpose.keep_patients": ("To keep several patient IDs together in case {case}.",
                                  "用于在病例 {case} 中保留多个患者编号。"),
    "pin.set_title": ("Choose the coordinator PIN", "设置协调员密码"),
    "pin.change_title": ("Change the coordinator PIN", "修改协调员密码"),
    "pin.set_help": ("No coordinator PIN is set yet. It protects Admin and the overrides: an "
                     "unencrypted copy, purging a case not uploaded, several patients in one "
                     "case. 4 to 12 digits, typed twice.",
                     "尚未设置协调员密码。它保护管理功能和以下操作：不加密的副本、清除尚未上传的"
                     "病例、一个病例中保留多位患者。4 到 12 位数字，输入两次。"),
    "pin.change_help": ("4 to 12 digits, typed twice. The old PIN stops working at once.",
                        "4 到 12 位数字，输入两次。旧密码立即失效。"),
    "pin.new": ("New PIN", "新密码"),
    "pin.again": ("The same PIN again", "再次输入新密码"),
    "pin.mismatch": ("The two PINs differ: type them again.", "两次输入的密码不一致：请重新输入。"),
    "pin.rule.digits": ("A PIN is 4 to 12 digits (0-9).", "密码为 4 到 12 位数字（0-9）。"),
    "pin.rule.same": ("One digit repeated (like 0000) is the first thing anyone tries.",
                      "重复同一个数字（如 0000）最容易被猜到。"),
    "pin.rule.sequence": ("Consecutive digits (like 1234 or 9876) are too easy to guess.",
                          "连续数字（如 1234 或 9876）太容易被猜到。"),
    "pin.set_done": ("Coordinator PIN set.", "协调员密码已设置。"),
    "pin.wrong": ("Wrong PIN ({left} tries left).", "密码错误（还可尝试 {left} 次）。"),
    "pin.locked": ("Too many wrong PINs: wait {s} s.", "错误次数过多：请等待 {s} 秒。"),
    "pin.demo": ("Demo PIN: {pin}", "演示密码：{pin}"),
    "admin.title": ("Admin", "管理"),
    "admin.settings": ("Settings (from the configuration file; change it and restart)",
                       "设置（来自配置文件；修改后重启生效）"),
    "admin.sync": ("Cloud: {state} — {message}", "云端：{state} — {message}"),
    "admin.sync_none": ("No upload jobs.", "没有上传任务。"),
    "admin.retried": ("{n} failed job(s) will be retried.", "{n} 个失败任务将重试。"),
    "admin.sync_started": ("A sync round has started.", "已开始一轮同步。"),
    "admin.purge_help": ("Purge removes a case's images and reports from this kiosk. Select a "
                         "case and press X.", "清除会从本机删除病例的影像和报告。选中病例后按 X。"),
    "admin.purge_confirm": ("Purge case {case} from this kiosk?", "从本机清除病例 {case}？"),
    "admin.purge_text": ("Its images and reports are deleted from this kiosk. A case not "
                         "uploaded yet then exists nowhere else.",
                         "其影像和报告将从本机删除。尚未上传的病例删除后将不再有任何副本。"),
    "admin.purged": ("Case {case} purged.", "病例 {case} 已清除。"),
    "admin.purge_unuploaded": ("Case {case} is NOT uploaded to the office yet: purging it "
                               "deletes the only copy. The coordinator PIN is needed.",
                               "病例 {case} 尚未上传到办公室：清除后将不再有任何副本。"
                               "需要协调员密码。"),
    "admin.config_pin": ("ui.admin_pin is still in the configuration file: remove it (the PIN "
                         "in force is stored hashed).",
                         "配置文件中仍有 ui.admin_pin：请删除它（当前密码以哈希形式保存）。"),
    "admin.audit": ("Audit trail, newest first", "审计记录（最新在前）"),
    "admin.logfile": ("Log file {path}", "日志文件 {path}"),
    # --- dialogs --------------------------------------------------------------------------
    # A disc refused before it is indexed (kiosk/sources/iso_census.py): DiscTreeLimitError.limit.
    "error.disc_tree_title": ("Disc not read: past the limits", "光盘未读取：超出上限"),
    "error.disc_tree.max_files": (
        "The disc's folders list more than {n} entries, over twice the limit of {limit} files "
        "(import.max_files), so it was not read: indexing it could exhaust the kiosk's memory. "
        "Raise the limit if the disc is genuine, or import its files from a copy.",
        "光盘目录列出的条目超过 {n} 个，是上限 {limit} 个文件（import.max_files）的两倍以上，"
        "因此未读取：建立索引可能耗尽本机内存。如光盘可信，请提高上限，或从副本导入其文件。"),
    "error.disc_tree.max_seconds": (
        "Reading the disc's folders took longer than the time limit (import.max_seconds), so it "
        "was not read. Clean the disc and try again, or ask the hospital for a new one.",
        "读取光盘目录超过时间上限（import.max_seconds），因此未读取。请清洁光盘后重试，"
        "或请医院重新刻录。"),
    "error.disc_tree.loop": (
        "The disc's folders form a loop (a folder contains itself): the disc is damaged or "
        "crafted, so it was not read. Ask the hospital for a new disc.",
        "光盘目录形成循环（文件夹包含自身）：光盘已损坏或被篡改，因此未读取。请医院重新刻录光盘。"),
    "error.disc_tree.directory_bytes": (
        "The disc's folder listings are far larger than the files in them: the disc is damaged "
        "or crafted, so it was not read. Ask the hospital for a new disc.",
        "光盘目录列表远大于其中的文件：光盘已损坏或被篡改，因此未读取。请医院重新刻录光盘。"),
    "error.unexpected_title": ("Unexpected problem", "意外问题"),
    "error.unexpected_text": ("{detail}. The kiosk keeps running: try again, and tell the office "
                              "if it happens again (the log has the details).",
                              "{detail}。本机仍在运行：请重试；如再次发生，请告知办公室（日志中有详细信息）。"),
}


def t(key: str, lang: str, **values: object) -> str:
    """The text of ``key`` in ``lang`` ("en"/"zh"), with ``values`` filled in.

    An unknown key comes back as itself, so a missing string shows up on screen and in the
    test that checks every key the screens use.
    """
    pair = STRINGS.get(key)
    if pair is None:
        return key
    text = pair[1] if lang == "zh" else pair[0]
    return text.format(**values) if values else text


def other(lang: str) -> str:
    """The language F2 switches to."""
    return "en" if lang == "zh" else "zh"
