// The few parts of the `vscode` API that src/settings.ts and src/palette.ts use, driven
// by the test: settings per scope, the active file, workspace folders, scripted quick
// picks, and the messages shown.

const state = {
  settings: {}, // key → { globalValue, workspaceValue, workspaceFolderValue }
  activeFile: undefined,
  folders: [],
  picks: [], // answers of the next quick picks: a function (items) → item, in order
  shown: [], // [kind, message]
  pickedFrom: [], // the items each quick pick offered
  statusItems: [],
};

module.exports = {
  __state: state,
  workspace: {
    getConfiguration: () => ({ inspect: (key) => ({ key, ...(state.settings[key] ?? {}) }) }),
    get workspaceFolders() {
      return state.folders.map((f) => ({ uri: { fsPath: f, scheme: 'file' } }));
    },
  },
  StatusBarAlignment: { Left: 1, Right: 2 },
  window: {
    createStatusBarItem: (id, alignment, priority) => {
      const item = { id, alignment, priority, visible: false, show: () => (item.visible = true), dispose() {} };
      state.statusItems.push(item);
      return item;
    },
    get activeTextEditor() {
      return state.activeFile && { document: { uri: { scheme: 'file', fsPath: state.activeFile } } };
    },
    showQuickPick: async (items) => {
      state.pickedFrom.push(items);
      const answer = state.picks.shift();
      return answer ? answer(items) : undefined;
    },
    showErrorMessage: async (m) => void state.shown.push(['error', m]),
    showInformationMessage: async (m) => void state.shown.push(['info', m]),
  },
};
