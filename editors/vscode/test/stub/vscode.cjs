// The few parts of the `vscode` API that src/settings.ts, src/palette.ts and
// src/searchTree.ts use, driven by the test: settings per scope, the active file,
// workspace folders, scripted quick picks, the messages shown, tree views and the
// commands executed.

const state = {
  settings: {}, // key → { globalValue, workspaceValue, workspaceFolderValue }
  activeFile: undefined,
  folders: [],
  picks: [], // answers of the next quick picks: a function (items) → item, in order
  shown: [], // [kind, message]
  pickedFrom: [], // the items each quick pick offered
  statusItems: [],
  treeViews: [],
  executed: [], // [command, ...args] of vscode.commands.executeCommand
  editorListeners: [],
};

class EventEmitter {
  constructor() {
    this.listeners = [];
    this.event = (f) => {
      this.listeners.push(f);
      return { dispose: () => (this.listeners = this.listeners.filter((g) => g !== f)) };
    };
  }
  fire(e) {
    for (const f of this.listeners) f(e);
  }
  dispose() {
    this.listeners = [];
  }
}

class TreeItem {
  constructor(label, collapsibleState) {
    this.label = label;
    this.collapsibleState = collapsibleState;
  }
}

class ThemeIcon {
  constructor(id, color) {
    this.id = id;
    this.color = color;
  }
}

class ThemeColor {
  constructor(id) {
    this.id = id;
  }
}

module.exports = {
  __state: state,
  EventEmitter,
  TreeItem,
  ThemeIcon,
  ThemeColor,
  TreeItemCollapsibleState: { None: 0, Collapsed: 1, Expanded: 2 },
  Uri: { file: (fsPath) => ({ scheme: 'file', fsPath }) },
  commands: {
    executeCommand: async (...args) => void state.executed.push(args),
    registerCommand: () => ({ dispose() {} }),
  },
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
    createTreeView: (id, options) => {
      const visibility = new EventEmitter();
      const view = {
        id,
        options,
        visible: true,
        selection: [],
        message: undefined,
        description: undefined,
        onDidChangeVisibility: visibility.event,
        /** The user shows or hides the view. */
        setVisible(visible) {
          view.visible = visible;
          visibility.fire({ visible });
        },
        dispose() {},
      };
      state.treeViews.push(view);
      return view;
    },
    onDidChangeActiveTextEditor: (f) => {
      state.editorListeners.push(f);
      return { dispose() {} };
    },
    setStatusBarMessage: (m) => {
      state.shown.push(['status', m]);
      return { dispose() {} };
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
