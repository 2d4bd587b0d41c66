// Which Fluent theme the pane wears (pure: unit-tested). theme.js applies the choice.
//
// In order: the system's forced colours (Windows high contrast) → Fluent's high-contrast
// tokens; else Office's own theme when the host has one (Office.context.officeTheme: its
// background decides light or dark, and its body colours replace Fluent's neutral
// background and foreground so the pane matches the host exactly); else the system's
// prefers-color-scheme.

/** Relative luminance (0…255 scale, as Office's own add-in samples do) of "#rrggbb". */
export function luminance(hex) {
  const value = String(hex || "").replace("#", "");
  if (!/^[0-9a-f]{6}$/i.test(value)) return null;
  const [r, g, b] = [0, 2, 4].map((i) => parseInt(value.slice(i, i + 2), 16));
  return 0.299 * r + 0.587 * g + 0.114 * b;
}

const COLOUR = /^#[0-9a-f]{6}$/i;

/**
 * The theme for these conditions: {name: "light" | "dark" | "contrast", overrides}.
 * `overrides` are token values to set over the named theme (Office's colours).
 */
export function chooseLook({ officeTheme = null, prefersDark = false, forcedColors = false } = {}) {
  if (forcedColors) return { name: "contrast", overrides: {} };
  const background = officeTheme?.bodyBackgroundColor;
  const level = luminance(background);
  if (level !== null) {
    const overrides = { colorNeutralBackground1: background };
    const foreground = officeTheme.bodyForegroundColor;
    if (COLOUR.test(String(foreground || ""))) overrides.colorNeutralForeground1 = foreground;
    return { name: level < 128 ? "dark" : "light", overrides };
  }
  return { name: prefersDark ? "dark" : "light", overrides: {} };
}
