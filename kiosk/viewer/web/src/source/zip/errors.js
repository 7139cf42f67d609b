// What can go wrong opening the stick, in words the doctor can act on (English and Chinese).

export class PackageError extends Error {
  /**
   * @param {"wrong-passphrase"|"missing-part"|"not-a-package"|"damaged"} code
   * @param {{en: string, zh: string}} message
   * @param {string} [detail] technical detail (not shown to the doctor as the message)
   */
  constructor(code, message, detail = "") {
    super(message.en);
    this.name = "PackageError";
    this.code = code;
    this.message = message;
    this.detail = detail;
  }
}

export const WORDS = {
  choose: {
    en: "Choose IMAGES.zip from the stick (or all of IMAGES.zip.001, .002, … together).",
    zh: "请选择U盘中的 IMAGES.zip（或同时选择 IMAGES.zip.001、.002 ……全部分卷）。",
  },
  missing: (names) => ({
    en: `Part${names.length > 1 ? "s" : ""} ${names.join(", ")} ${names.length > 1 ? "are" : "is"} missing: choose every part of IMAGES.zip together.`,
    zh: `缺少分卷 ${names.join("、")}：请同时选择 IMAGES.zip 的全部分卷。`,
  }),
  lastMissing: (last) => ({
    en: `The archive ends without its index: the part after ${last} may be missing. Choose every part of IMAGES.zip together.`,
    zh: `压缩包缺少结尾索引：${last} 之后的分卷可能缺失。请同时选择 IMAGES.zip 的全部分卷。`,
  }),
  notOurs: {
    en: "This file is not a MedPass package (IMAGES.zip). Choose IMAGES.zip from the stick's MEDPASS folder.",
    zh: "此文件不是 MedPass 影像包（IMAGES.zip）。请选择U盘 MEDPASS 文件夹中的 IMAGES.zip。",
  },
  wrongPassphrase: {
    en: "The passphrase is not right. Type it exactly as printed on the slip, with the dashes.",
    zh: "密码不正确。请按小票上印的原样输入，包括短横线。",
  },
  damaged: {
    en: "The archive is damaged and cannot be opened. Copy the folder from the stick again, or ask the kiosk desk for a new copy.",
    zh: "压缩包已损坏，无法打开。请重新从U盘复制文件夹，或请服务台重新制作。",
  },
};
