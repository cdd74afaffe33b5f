-- Drives headless Neovim for tests/nvim_tree.rs: loads the aisci plugin as a user does,
-- feeds `aisci.listNodes` answers (fixtures of the server's contract, decoded as the LSP
-- client decodes them: null is vim.NIL) to the :AisciTree renderer and checks the lines;
-- then shows one in the tree buffer and presses its keys (<CR>, r, b, R, q) with the
-- server stubbed out at require('aisci').exec, recording what would have been sent.
--
--   nvim --headless --clean -l tree_render.lua PLUGIN_DIR WORKDIR REPORT

local plugin_dir, workdir, report_path = unpack(arg)
assert(report_path, 'usage: tree_render.lua PLUGIN_DIR WORKDIR REPORT')

local H = dofile(vim.fs.joinpath(vim.fs.dirname(debug.getinfo(1, 'S').source:sub(2)), 'harness.lua'))
local report = H.init(report_path, { notes = {}, sent = {} })

local idea = workdir .. '/results/tiny_mlp/20261129_120000_dropout'
local function node_dir(id)
  return idea .. '/.aisci/tree/' .. id
end

local function write(path, text)
  vim.fn.mkdir(vim.fs.dirname(path), 'p')
  local f = assert(io.open(path, 'w'))
  f:write(text)
  f:close()
end

-- A tree search on val_loss (lower is better), as the server answers aisci.listNodes.
local TREE = [[{
  "folder": "IDEA", "mode": "tree",
  "metric": {"name": "val_loss", "direction": "min", "source": "template"},
  "baseline_score": 0.9, "best": "node_3",
  "seeds": {"node": "node_3", "scores": [0.8, 0.81, 0.79], "mean": 0.8, "stderr": 0.005774},
  "nodes": [
    {"id": "node_0", "parent": null, "kind": "baseline", "state": "done", "score": 0.9, "smoke_score": null,
     "vs_baseline": 0, "plan": "", "cost_usd": 0, "label": "node_0 baseline", "code": "IDEA/.aisci/tree/node_0/experiment.py",
     "parent_code": null, "diff": null, "run": "IDEA/.aisci/tree/node_0/run_2", "error": null},
    {"id": "node_1", "parent": "node_0", "kind": "draft", "state": "done", "score": 0.85, "smoke_score": 0.88,
     "vs_baseline": 0.0556, "plan": "Add dropout 0.1", "cost_usd": 0.0123, "label": "node_1 draft",
     "code": "IDEA/.aisci/tree/node_1/experiment.py", "parent_code": "IDEA/.aisci/tree/node_0/experiment.py",
     "diff": "IDEA/.aisci/tree/node_1/edit.diff", "run": "IDEA/.aisci/tree/node_1/run_2", "error": null},
    {"id": "node_2", "parent": "node_0", "kind": "draft", "state": "failed", "score": null, "smoke_score": null,
     "vs_baseline": null, "plan": "Swap the optimizer", "cost_usd": 0.01, "label": "node_2 draft",
     "code": "IDEA/.aisci/tree/node_2/experiment.py", "parent_code": "IDEA/.aisci/tree/node_0/experiment.py",
     "diff": "IDEA/.aisci/tree/node_2/edit.diff", "run": null, "error": "KeyError: 'lr' (line 40)\nTraceback ..."},
    {"id": "node_3", "parent": "node_1", "kind": "improve", "state": "done", "score": 0.8, "smoke_score": 0.84,
     "vs_baseline": 0.1111, "plan": "Dropout 0.2", "cost_usd": 0.02, "label": "node_3 improve",
     "code": "IDEA/.aisci/tree/node_3/experiment.py", "parent_code": "IDEA/.aisci/tree/node_1/experiment.py",
     "diff": "IDEA/.aisci/tree/node_3/edit.diff", "run": "IDEA/.aisci/tree/node_3/run_2", "error": null},
    {"id": "node_4", "parent": "node_2", "kind": "debug", "state": "smoke", "score": null, "smoke_score": 0.95,
     "vs_baseline": null, "plan": "Fix the key", "cost_usd": 0.01, "label": "node_4 debug",
     "code": "IDEA/.aisci/tree/node_4/experiment.py", "parent_code": "IDEA/.aisci/tree/node_2/experiment.py",
     "diff": "IDEA/.aisci/tree/node_4/edit.diff", "run": "IDEA/.aisci/tree/node_4/run_1", "error": null},
    {"id": "node_5", "parent": "node_1", "kind": "improve", "state": "duplicate", "score": null, "smoke_score": null,
     "vs_baseline": null, "plan": "Dropout 0.1 again", "cost_usd": 0.01, "label": "node_5 improve",
     "code": "IDEA/.aisci/tree/node_5/experiment.py", "parent_code": "IDEA/.aisci/tree/node_1/experiment.py",
     "diff": null, "run": null, "error": null},
    {"id": "node_6", "parent": "node_3", "kind": "improve", "state": "not_promoted", "score": null, "smoke_score": 0.99,
     "vs_baseline": -0.1, "plan": "Dropout 0.5", "cost_usd": 0.01, "label": "node_6 improve",
     "code": "IDEA/.aisci/tree/node_6/experiment.py", "parent_code": "IDEA/.aisci/tree/node_3/experiment.py",
     "diff": "IDEA/.aisci/tree/node_6/edit.diff", "run": "IDEA/.aisci/tree/node_6/run_1", "error": null}
  ]
}]]

-- The classic loop: run_0, run_1, run_2, each the parent of the next.
local LINE = [[{
  "folder": "IDEA", "mode": "line", "metric": null, "baseline_score": 0.9, "best": "run_2", "seeds": null,
  "nodes": [
    {"id": "run_0", "parent": null, "kind": "baseline", "state": "done", "score": 0.9, "smoke_score": null,
     "vs_baseline": 0, "plan": "", "cost_usd": 0, "label": "run_0 baseline", "code": null,
     "parent_code": null, "diff": null, "run": "IDEA/run_0", "error": null},
    {"id": "run_1", "parent": "run_0", "kind": "run", "state": "failed", "score": null, "smoke_score": null,
     "vs_baseline": null, "plan": "wider", "cost_usd": 0.01, "label": "run_1", "code": "IDEA/run_1.py",
     "parent_code": "IDEA/run_0.py", "diff": null, "run": "IDEA/run_1", "error": "timed out"},
    {"id": "run_2", "parent": "run_1", "kind": "run", "state": "done", "score": 0.88, "smoke_score": null,
     "vs_baseline": 0.0222, "plan": "narrower", "cost_usd": 0.01, "label": "run_2", "code": "IDEA/run_2.py",
     "parent_code": "IDEA/run_1.py", "diff": null, "run": "IDEA/run_2", "error": null}
  ]
}]]

local function decode(json)
  return vim.json.decode((json:gsub('IDEA', idea)))
end

local function same(got, want, what)
  if not vim.deep_equal(got, want) then
    error(('%s:\n--- got\n%s\n--- want\n%s'):format(what, table.concat(got, '\n'), table.concat(want, '\n')), 0)
  end
end

local function press(keys)
  vim.api.nvim_feedkeys(vim.keycode(keys), 'x', false)
end

-- Puts the cursor on the line of node `id` (by the buffer's own line → node map).
local function cursor_on(buf, id)
  for lnum, n in pairs(require('aisci.tree').shown[buf].nodes) do
    if n.id == id then
      vim.api.nvim_win_set_cursor(0, { lnum, 0 })
      return lnum
    end
  end
  error('no line for ' .. id, 0)
end

local function main()
  vim.opt.runtimepath:prepend(plugin_dir)
  vim.cmd.runtime('plugin/aisci.lua')
  assert(vim.fn.exists(':AisciTree') == 2, ':AisciTree is not defined')
  local tree = require('aisci.tree')
  vim.notify = function(msg, level)
    table.insert(report.notes, { msg = msg, level = level or vim.log.levels.INFO })
  end

  -- The renderer: pure, nodes → lines.
  local list = decode(TREE)
  local lines, nodes = tree.render(list)
  report.tree_lines = lines
  same(lines, {
    'aisci search of 20261129_120000_dropout: tree search · val_loss (min) · baseline 0.9 · best node_3',
    'seeds of node_3: 0.8 ± 0.005774 over 3 runs',
    '',
    'node_0           baseline  done          0.9           0.0%',
    '├─ node_1        draft     done          0.85          +5.6%',
    '│  ├─ node_3 ★   improve   done          0.8           +11.1%',
    '│  │  └─ node_6  improve   not promoted  0.99 (smoke)  -10.0%',
    '│  └─ node_5     improve   duplicate     —',
    "└─ node_2        draft     failed        —                     KeyError: 'lr' (line 40)",
    '   └─ node_4     debug     smoke         0.95 (smoke)',
    '',
    '<CR> diff   r restore   b branch   R refresh   q close',
  }, 'tree mode')
  local ids = {}
  for lnum = 1, #lines do
    ids[#ids + 1] = nodes[lnum] and nodes[lnum].id or '-'
  end
  same(ids, { '-', '-', '-', 'node_0', 'node_1', 'node_3', 'node_6', 'node_5', 'node_2', 'node_4', '-', '-' }, 'node of each line')

  local line_lines = tree.render(decode(LINE))
  report.line_lines = line_lines
  same(line_lines, {
    'aisci search of 20261129_120000_dropout: one run after another · baseline 0.9 · best run_2',
    '',
    'run_0    baseline  done    0.9   0.0%',
    'run_1    run       failed  —            timed out',
    'run_2 ★  run       done    0.88  +2.2%',
    '',
    '<CR> diff   r restore   b branch   R refresh   q close',
  }, 'line mode')

  local no_seeds = decode(TREE)
  no_seeds.seeds = { node = 'node_3', scores = {}, mean = vim.NIL, stderr = vim.NIL }
  local seeds_line = tree.render(no_seeds)[2]
  assert(seeds_line == 'seeds of node_3: none completed', seeds_line)

  local empty = tree.render({ folder = idea, mode = 'tree', metric = vim.NIL, baseline_score = vim.NIL, best = vim.NIL, seeds = vim.NIL, nodes = {} })
  assert(vim.list_contains(empty, 'no runs or nodes yet'), vim.inspect(empty))
  H.step('rendered')

  -- The tree buffer, with the server stubbed: what each key would send.
  write(idea .. '/experiment.py', 'print(0)\n')
  write(node_dir('node_1') .. '/experiment.py', 'print(1)\n')
  write(node_dir('node_3') .. '/edit.diff', '--- a/experiment.py\n+++ b/experiment.py\n')
  local answers = {
    ['aisci.listNodes'] = function()
      return decode(TREE)
    end,
    ['aisci.restoreCheckpoint'] = function()
      return { restored = true, file = idea .. '/experiment.py' }
    end,
    ['aisci.branchFrom'] = function(args)
      return { branched = true, message = 'the next run continues from ' .. args[1].id }
    end,
  }
  require('aisci').exec = function(_, command, arguments, _, on_done)
    table.insert(report.sent, { command = command, arguments = arguments })
    on_done(nil, answers[command](arguments))
  end

  local origin = vim.api.nvim_get_current_win()
  local buf = tree.show(decode(TREE))
  assert(vim.api.nvim_get_current_win() ~= origin, 'the tree opens in its own window')
  report.buffer_name = vim.api.nvim_buf_get_name(buf)
  same(vim.api.nvim_buf_get_lines(buf, 0, -1, false), report.tree_lines, 'the buffer shows the rendered lines')
  assert(not vim.bo[buf].modifiable and vim.bo[buf].buftype == 'nofile', 'a read-only scratch buffer')
  assert(vim.api.nvim_win_get_cursor(0)[1] == 4, 'the cursor starts on the first node')

  cursor_on(buf, 'node_3')
  press('<CR>')
  report.opened = vim.api.nvim_buf_get_name(0)
  assert(report.opened == node_dir('node_3') .. '/edit.diff', report.opened)
  assert(vim.api.nvim_get_current_win() == origin, 'opened in the window the user came from')
  assert(vim.fn.bufwinid(buf) ~= -1, 'the tree stays shown')
  vim.api.nvim_set_current_win(vim.fn.bufwinid(buf))
  cursor_on(buf, 'node_1')
  press('<CR>')
  report.opened_no_diff = vim.api.nvim_buf_get_name(0)
  assert(report.opened_no_diff == node_dir('node_1') .. '/experiment.py', 'no diff file: the code')
  vim.api.nvim_set_current_win(vim.fn.bufwinid(buf))

  -- A line's run_0 kept no code: nothing to open, and it says so.
  local line_buf = tree.show(decode(LINE))
  assert(line_buf == buf, 'one tree buffer per folder')
  cursor_on(buf, 'run_0')
  press('<CR>')
  assert(vim.api.nvim_get_current_buf() == buf, 'nothing opened')
  report.no_code_note = report.notes[#report.notes].msg
  assert(report.no_code_note == 'aisci: the code of run_0 was not kept', report.no_code_note)
  tree.show(decode(TREE))

  cursor_on(buf, 'node_3')
  press('r')
  press('b')
  local lnum = cursor_on(buf, 'node_6')
  press('R')
  assert(vim.api.nvim_win_get_cursor(0)[1] == lnum, 'a refresh keeps the cursor on its node')
  vim.api.nvim_win_set_cursor(0, { 1, 0 })
  press('r')
  assert(#report.sent == 4, 'r on the header sends nothing')
  H.step('keys pressed')

  -- :AisciTree from a node's own copy of the code asks for the idea folder.
  vim.api.nvim_set_current_win(origin)
  vim.cmd.edit(vim.fn.fnameescape(node_dir('node_1') .. '/experiment.py'))
  vim.cmd('AisciTree')
  report.from_node_copy = report.sent[#report.sent]

  vim.api.nvim_set_current_win(vim.fn.bufwinid(buf))
  press('q')
  report.closed = vim.fn.bufwinid(buf) == -1
  assert(report.closed, 'q closes the tree window')
  H.step('done')
end

H.run('tree_render.lua', main)
