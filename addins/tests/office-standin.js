// A local stand-in for Office.js, for browser tests: the test serves this file in place of
// https://appsforoffice.microsoft.com/lib/1/hosted/office.js (Playwright's route()), so no
// test touches the network. It fakes the few Word and Outlook APIs the pane uses and records
// every call into window.__calls as {api, args}.
//
// Configure it before the page loads (Playwright's add_init_script):
//   window.__officeConfig = {
//     host: "Word" | "Outlook", theme: "light" | "dark",
//     selection: "...", body: "...",               // Word
//     mode: "read" | "compose", subject, from, body // Outlook
//     wordApi: "1.5"                               // highest WordApi version supported
//   };
(function () {
  "use strict";
  const config = Object.assign({ host: "Word", theme: "light", selection: "", body: "" },
    window.__officeConfig || {});
  const calls = (window.__calls = []);
  const record = (api, ...args) => calls.push({ api, args });
  const ok = (value) => ({ status: "succeeded", value });

  const themes = {
    light: { bodyBackgroundColor: "#ffffff", bodyForegroundColor: "#242424",
      controlBackgroundColor: "#ffffff", controlForegroundColor: "#242424" },
    dark: { bodyBackgroundColor: "#292929", bodyForegroundColor: "#f0f0f0",
      controlBackgroundColor: "#3b3b3b", controlForegroundColor: "#f0f0f0" },
  };

  function range(name, text) {
    const self = {
      text: undefined,
      items: undefined,
      load() { self.text = text; return self; },
      insertText(value, location) {
        record(`${name}.insertText`, value, location);
        return range("inserted", value);
      },
      insertParagraph(value, location) {
        record(`${name}.insertParagraph`, value, location);
        return range("paragraph", value);
      },
      insertComment(value) { record(`${name}.insertComment`, value); return {}; },
      insertFootnote(value) { record(`${name}.insertFootnote`, value); return {}; },
      search(value, options) {
        record(`${name}.search`, value, options);
        const hits = [];
        let at = text.indexOf(value);
        while (at >= 0) {
          hits.push(range("marker", value));
          at = text.indexOf(value, at + value.length);
        }
        return { items: hits, load() { return this; } };
      },
    };
    return self;
  }

  const context = {
    document: {
      getSelection() { record("document.getSelection"); return range("selection", config.selection); },
      get body() { return range("body", config.body); },
    },
    async sync() { record("context.sync"); },
  };

  function outlookItem() {
    const body = {
      getAsync(coercion, callback) { record("body.getAsync", coercion); callback(ok(config.body)); },
      setAsync(data, options, callback) { record("body.setAsync", data, options); callback(ok()); },
      setSelectedDataAsync(data, options, callback) {
        record("body.setSelectedDataAsync", data, options);
        callback(ok());
      },
    };
    if (config.mode === "compose") {
      return {
        itemType: "message", body,
        subject: { getAsync(callback) { callback(ok(config.subject || "")); } },
        getSelectedDataAsync(coercion, callback) { callback(ok({ data: "" })); },
      };
    }
    return {
      itemType: "message", body,
      subject: config.subject || "",
      from: { displayName: config.from || "", emailAddress: "" },
      displayReplyForm(data) { record("item.displayReplyForm", data); },
    };
  }

  const wordApi = Number(config.wordApi || "1.5");
  window.Office = {
    HostType: { Word: "Word", Outlook: "Outlook" },
    CoercionType: { Text: "text", Html: "html" },
    AsyncResultStatus: { Succeeded: "succeeded", Failed: "failed" },
    context: {
      host: config.host,
      officeTheme: themes[config.theme] || themes.light,
      requirements: {
        isSetSupported(name, version) {
          if (name === "WordApi") return config.host === "Word" && Number(version) <= wordApi;
          return false; // no NestedAppAuth: dev sign-in only
        },
      },
      mailbox: config.host === "Outlook" ? { item: outlookItem() } : undefined,
    },
    onReady() { return Promise.resolve({ host: config.host, platform: "PC" }); },
  };
  if (config.host === "Word") {
    window.Word = {
      InsertLocation: { after: "After", replace: "Replace", end: "End" },
      run(batch) { record("Word.run"); return batch(context); },
    };
  }
})();
