--- :AisciTree: the search over implementations of an idea's experiment (the server's
--- `aisci.listNodes`) in a scratch buffer, one node per line, children indented under
--- their parent. Keys: <CR> opens the node's diff (or its code), `r` restores its code
--- into experiment.py (`aisci.restoreCheckpoint`), `b` makes the next run continue from
--- it (`aisci.branchFrom`), `R` refreshes, `q` closes. `render` is pure, for the tests.
local M = {}

local HELP = '<CR> diff   r restore   b branch   R refresh   q close'

--- Four significant digits: scores are losses, accuracies, seconds.
local function score(x)
  return ('%.4g'):format(x)
end

--- "+4.5%", "-2.0%": relative to the baseline, positive is better.
local function vs(v)
  return (v > 0 and '+' or '') .. ('%.1f%%'):format(v * 100)
end

local function present(v)
  return v ~= nil and v ~= vim.NIL
end

local function score_text(n)
  if present(n.score) then
    return score(n.score)
  elseif present(n.smoke_score) then
    return score(n.smoke_score) .. ' (smoke)'
  end
  return '—'
end

local function pad(s, width)
  return s .. (' '):rep(width - vim.api.nvim_strwidth(s))
end

--- "tree search · val_loss (min) · baseline 0.9 · best node_3".
local function summary(list)
  local parts = { list.mode == 'tree' and 'tree search' or 'one run after another' }
  if present(list.metric) then
    table.insert(parts, ('%s (%s)'):format(list.metric.name, list.metric.direction))
  end
  if present(list.baseline_score) then
    table.insert(parts, 'baseline ' .. score(list.baseline_score))
  end
  if present(list.best) then
    table.insert(parts, 'best ' .. list.best)
  end
  return table.concat(parts, ' · ')
end

--- The nodes in display order, each with its tree prefix ("├─ ", "│  └─ "). In "line"
--- mode the runs stay flat: each is the parent of the next, and nesting them would
--- indent run_k k levels deep.
local function ordered(list)
  local out = {}
  if list.mode ~= 'tree' then
    for _, n in ipairs(list.nodes) do
      table.insert(out, { node = n, prefix = '' })
    end
    return out
  end
  local known, children, roots = {}, {}, {}
  for _, n in ipairs(list.nodes) do
    known[n.id] = true
  end
  for _, n in ipairs(list.nodes) do
    -- A child whose parent is missing (a journal cut short) shows as a root.
    if present(n.parent) and known[n.parent] then
      children[n.parent] = children[n.parent] or {}
      table.insert(children[n.parent], n)
    else
      table.insert(roots, n)
    end
  end
  local function walk(n, prefix, rest)
    table.insert(out, { node = n, prefix = prefix })
    local kids = children[n.id] or {}
    for i, c in ipairs(kids) do
      local last = i == #kids
      walk(c, rest .. (last and '└─ ' or '├─ '), rest .. (last and '   ' or '│  '))
    end
  end
  for _, n in ipairs(roots) do
    walk(n, '', '')
  end
  return out
end

--- The buffer's lines for an `aisci.listNodes` answer, and the node of each line (by
--- line number; header and help lines have none).
--- @param list table the answer: { folder, mode, metric, baseline_score, best, seeds, nodes }
--- @return string[] lines
--- @return table<integer, table> nodes
function M.render(list)
  local lines = { ('aisci search of %s: %s'):format(vim.fs.basename(list.folder), summary(list)) }
  local seeds = list.seeds
  if present(seeds) then
    if present(seeds.mean) and present(seeds.stderr) then
      table.insert(lines, ('seeds of %s: %s ± %s over %d runs'):format(seeds.node, score(seeds.mean), score(seeds.stderr), #seeds.scores))
    else
      table.insert(lines, ('seeds of %s: none completed'):format(seeds.node))
    end
  end
  table.insert(lines, '')
  local rows = ordered(list)
  local cols = { 0, 0, 0, 0, 0 }
  local cells = {}
  for _, r in ipairs(rows) do
    local n = r.node
    local c = {
      r.prefix .. n.id .. (n.id == list.best and ' ★' or ''),
      n.kind,
      (n.state:gsub('_', ' ')),
      score_text(n),
      present(n.vs_baseline) and vs(n.vs_baseline) or '',
    }
    for i = 1, 5 do
      cols[i] = math.max(cols[i], vim.api.nvim_strwidth(c[i]))
    end
    table.insert(cells, c)
  end
  local nodes = {}
  for i, c in ipairs(cells) do
    local n = rows[i].node
    local padded = {}
    for j = 1, 5 do
      padded[j] = pad(c[j], cols[j])
    end
    -- Why it failed, its first line, after the columns.
    padded[6] = present(n.error) and vim.split(n.error, '\n', { plain = true })[1] or ''
    local line = table.concat(padded, '  ')
    table.insert(lines, (line:gsub('%s+$', '')))
    nodes[#lines] = n
  end
  if #rows == 0 then
    table.insert(lines, 'no runs or nodes yet')
  end
  table.insert(lines, '')
  table.insert(lines, HELP)
  return lines, nodes
end

--- The idea folder of a file: the project folder around it, never a node's own copy of
--- the code inside `.aisci/` (which <CR> opens).
--- @param path string
--- @return string?
function M.folder_of(path)
  local cut = path:find('/.aisci/', 1, true)
  if cut then
    path = path:sub(1, cut) .. 'experiment.py'
  end
  local root = require('aisci').root(path)
  if not root and vim.fs.basename(path) == 'experiment.py' then
    -- An experiment.py outside a recognised template or idea folder: its own folder.
    root = vim.fs.dirname(vim.fs.normalize(vim.fn.fnamemodify(path, ':p')))
  end
  return root
end

local function notify(msg, level)
  vim.notify('aisci: ' .. msg, level or vim.log.levels.INFO)
end

--- What the tree buffer of each folder shows: { list, nodes } by buffer.
M.shown = {}

local function node_at_cursor(buf)
  local s = M.shown[buf]
  return s and s.nodes[vim.api.nvim_win_get_cursor(0)[1]]
end

--- Opens `path` in the window the user came from (the tree stays), else in a split.
local function open_beside(path)
  local tree_win = vim.api.nvim_get_current_win()
  vim.cmd('wincmd p')
  if vim.api.nvim_get_current_win() == tree_win then
    vim.cmd('belowright split')
  end
  vim.cmd.edit(vim.fn.fnameescape(path))
end

local function keymaps(buf)
  local function map(lhs, fn, desc)
    vim.keymap.set('n', lhs, fn, { buffer = buf, nowait = true, silent = true, desc = 'aisci tree: ' .. desc })
  end
  local function with_node(fn)
    return function()
      local n = node_at_cursor(buf)
      if not n then
        notify('put the cursor on a node', vim.log.levels.WARN)
        return
      end
      fn(n, M.shown[buf].list.folder)
    end
  end
  map('<CR>', with_node(function(n)
    local diff = present(n.diff) and vim.uv.fs_stat(n.diff) and n.diff or nil
    local code = present(n.code) and n.code or nil
    if diff or code then
      open_beside(diff or code)
    else
      notify(('the code of %s was not kept'):format(n.id), vim.log.levels.WARN)
    end
  end), "open the node's diff (or its code)")
  map('r', with_node(function(n, folder)
    require('aisci').exec(buf, 'aisci.restoreCheckpoint', { { folder = folder, id = n.id } }, 'restore ' .. n.id, function(err, result)
      if not err and type(result) == 'table' then
        notify(('%s now holds the code of %s (u undoes it)'):format(vim.fs.basename(result.file or 'experiment.py'), n.id))
      end
    end)
  end), "restore the node's code into experiment.py")
  map('b', with_node(function(n, folder)
    require('aisci').exec(buf, 'aisci.branchFrom', { { folder = folder, id = n.id } }, 'branch from ' .. n.id, function(err, result)
      if not err and type(result) == 'table' then
        notify(result.message or ('the next run continues from ' .. n.id))
        M.refresh(buf)
      end
    end)
  end), 'the next run continues from the node')
  map('R', function()
    M.refresh(buf)
  end, 'refresh')
  map('q', function()
    if not pcall(vim.cmd.close) then
      vim.api.nvim_buf_delete(buf, { force = true })
    end
  end, 'close')
end

--- The tree buffer of `folder` (made on first use), shown in a window.
local function tree_buffer(folder)
  local name = 'aisci://tree/' .. folder
  local buf = vim.fn.bufnr(name)
  if buf == -1 then
    buf = vim.api.nvim_create_buf(true, true)
    vim.api.nvim_buf_set_name(buf, name)
    vim.bo[buf].buftype = 'nofile'
    vim.bo[buf].bufhidden = 'hide'
    vim.bo[buf].swapfile = false
    vim.bo[buf].modifiable = false
    vim.bo[buf].filetype = 'aisci-tree'
    keymaps(buf)
    vim.api.nvim_create_autocmd('BufWipeout', {
      buffer = buf,
      callback = function()
        M.shown[buf] = nil
      end,
    })
  end
  local win = vim.fn.bufwinid(buf)
  if win ~= -1 then
    vim.api.nvim_set_current_win(win)
  else
    vim.cmd('botright vsplit')
    vim.api.nvim_win_set_buf(0, buf)
  end
  return buf
end

--- Shows an `aisci.listNodes` answer in its folder's tree buffer; the cursor stays on
--- the node it was on. Returns the buffer.
--- @param list table
--- @return integer bufnr
function M.show(list)
  local buf = tree_buffer(list.folder)
  local before = node_at_cursor(buf)
  local lines, nodes = M.render(list)
  vim.bo[buf].modifiable = true
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
  vim.bo[buf].modifiable = false
  M.shown[buf] = { list = list, nodes = nodes }
  -- The same node as before the refresh, else the first one.
  local row
  for lnum, n in pairs(nodes) do
    if before and n.id == before.id then
      row = lnum
      break
    end
    row = math.min(row or lnum, lnum)
  end
  vim.api.nvim_win_set_cursor(0, { row or 1, 0 })
  return buf
end

--- Asks the server for `folder`'s nodes and shows them.
--- @param bufnr integer the buffer the request goes out for
--- @param folder string
function M.load(bufnr, folder)
  require('aisci').exec(bufnr, 'aisci.listNodes', { { folder = folder } }, 'search tree', function(err, result)
    if not err and type(result) == 'table' then
      M.show(result)
    end
  end)
end

--- `R`: the tree buffer's folder again.
function M.refresh(buf)
  local s = M.shown[buf]
  if s then
    M.load(buf, s.list.folder)
  end
end

--- `aisci/searchChanged`: the tree buffers of `folder` are asked for again (once per
--- burst of changes).
local pending = {}
function M.changed(folder)
  for buf, s in pairs(M.shown) do
    if s.list.folder == folder and vim.api.nvim_buf_is_valid(buf) and not pending[buf] then
      pending[buf] = true
      vim.defer_fn(function()
        pending[buf] = nil
        if vim.api.nvim_buf_is_valid(buf) then
          M.refresh(buf)
        end
      end, 200)
    end
  end
end

--- :AisciTree: the search tree of the current buffer's idea folder.
function M.open(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  local s = M.shown[bufnr]
  local folder = s and s.list.folder or M.folder_of(vim.api.nvim_buf_get_name(bufnr))
  if not folder then
    notify('open the experiment.py of an idea folder first', vim.log.levels.ERROR)
    return
  end
  M.load(bufnr, folder)
end

return M
