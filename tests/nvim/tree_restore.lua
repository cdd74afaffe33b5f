-- Drives headless Neovim for tests/search_tree.rs: with the aisci plugin and the real
-- server, opens the experiment.py of an idea folder a tree search finished, opens
-- :AisciTree, restores node_1 with `r` (an editor edit: `u` in experiment.py takes it
-- back), then branches from node_4 with `b`, and records what the editor saw.
--
--   nvim --headless --clean -l tree_restore.lua PLUGIN_DIR SERVER_BIN FOLDER REPORT SETTINGS_JSON

local plugin_dir, server_bin, folder, report_path, settings_json = unpack(arg)
assert(settings_json, 'usage: tree_restore.lua PLUGIN_DIR SERVER_BIN FOLDER REPORT SETTINGS_JSON')

local H = dofile(vim.fs.joinpath(vim.fs.dirname(debug.getinfo(1, 'S').source:sub(2)), 'harness.lua'))
local report = H.init(report_path, { notes = {} })
H.record_progress_and_messages()
-- The plugin says what it did with vim.notify.
vim.notify = function(msg)
  table.insert(report.notes, msg)
end

local function text(buf)
  return table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, false), '\n') .. '\n'
end

local function main()
  H.setup(plugin_dir, server_bin, settings_json)
  local buf = H.open_and_attach(folder .. '/experiment.py')
  report.before = text(buf)

  vim.cmd('AisciTree')
  local tree_buf
  H.wait_for('the tree buffer', 10000, function()
    local b = vim.api.nvim_get_current_buf()
    if vim.api.nvim_buf_get_name(b):match('^aisci://tree/') and require('aisci.tree').shown[b] then
      tree_buf = b
      return true
    end
    return false
  end)
  report.tree_lines = vim.api.nvim_buf_get_lines(tree_buf, 0, -1, false)

  local function on_node(id)
    for lnum, n in pairs(require('aisci.tree').shown[tree_buf].nodes) do
      if n.id == id then
        vim.api.nvim_win_set_cursor(0, { lnum, 0 })
        return
      end
    end
    error('no line for ' .. id)
  end

  on_node('node_1')
  vim.api.nvim_feedkeys('r', 'mx', false)
  H.wait_for("node_1's code in experiment.py", 10000, function()
    return text(buf):find("NAME = 'a'", 1, true) ~= nil
  end)
  report.restored = text(buf)
  -- The server answers once it has seen the edit come back (and wrote the file).
  H.wait_for('the restore answer', 10000, function()
    for _, m in ipairs(report.notes) do
      if m:find('now holds the code of node_1', 1, true) then
        return true
      end
    end
    return false
  end)
  vim.api.nvim_buf_call(buf, function()
    vim.cmd('undo')
  end)
  report.undone = text(buf)

  on_node('node_4')
  vim.api.nvim_feedkeys('b', 'mx', false)
  H.wait_for('the branch message', 10000, function()
    for _, m in ipairs(report.notes) do
      if m:find('branched from node_4', 1, true) then
        return true
      end
    end
    return false
  end)

  for _, c in ipairs(vim.lsp.get_clients({ name = 'aisci' })) do
    c:stop()
  end
  vim.wait(3000, function()
    return #vim.lsp.get_clients({ name = 'aisci' }) == 0
  end, 10)
end

H.run('tree_restore.lua', main)
