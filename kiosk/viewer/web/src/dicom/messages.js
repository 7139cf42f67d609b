// Messages for the doctor in both languages. String(m) gives "English / 中文", so a UI that
// just prints one still shows both; a UI with a language switch picks m.en or m.zh.

/**
 * @param {string} en
 * @param {string} zh
 * @returns {{en: string, zh: string, toString(): string}}
 */
export function message(en, zh) {
  return { en, zh, toString() { return `${en} / ${zh}`; } };
}

/** Why an image cannot be shown: the file is fine and still on the stick. */
export function cannotDisplay(whyEn, whyZh) {
  return message(`Cannot display this image (${whyEn}); it is still on the stick.`,
    `无法显示此影像（${whyZh}）；影像仍完整保存在 U 盘中。`);
}
