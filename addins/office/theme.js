// Apply the pane's Fluent theme (look.js decides which) and follow changes: the system
// switching dark mode or high contrast, and Office's theme when the host reports one.

import { setTheme } from "./vendor/fluent.js";
import { teamsHighContrastTheme, webDarkTheme, webLightTheme } from "./vendor/fluent-themes.js";
import { chooseLook } from "./look.js";

const THEMES = { light: webLightTheme, dark: webDarkTheme, contrast: teamsHighContrastTheme };

/** Set the theme now and whenever the system's colour preferences change. */
export function applyLook(Office) {
  const dark = matchMedia("(prefers-color-scheme: dark)");
  const forced = matchMedia("(forced-colors: active)");
  const apply = () => {
    const look = chooseLook({
      officeTheme: Office?.context?.officeTheme || null,
      prefersDark: dark.matches,
      forcedColors: forced.matches,
    });
    setTheme({ ...THEMES[look.name], ...look.overrides });
    document.documentElement.dataset.theme = look.name;
    return look;
  };
  dark.addEventListener("change", apply);
  forced.addEventListener("change", apply);
  try {
    // Office raises this when the user changes the Office theme (not every host has it).
    const event = Office?.EventType?.DocumentThemeChanged;
    if (event) Office.context?.document?.addHandlerAsync?.(event, apply);
  } catch {
    // a host without theme events keeps the theme it started with
  }
  return apply();
}
