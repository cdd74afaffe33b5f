-- Drives headless Neovim for tests/nvim_agent_edits.rs: with the aisci plugin and the
-- real server, a model reply pasted into a markdown buffer of a template gets the code
-- action "Apply agent edits"; running it edits experiment.py's buffer in one undo step;
-- a reply whose block does not apply changes no file and says why on the reply.
--
--   nvim --headless --clean -l apply_reply.lua PLUGIN_DIR SERVER_BIN TEMPLATE REPORT SETTINGS_JSON

local plugin_dir, server_bin, template, report_path, settings_json = unpack(arg)
assert(settings_json, 'usage: apply_reply.lua PLUGIN_DIR SERVER_BIN TEMPLATE REPORT SETTINGS_JSON')

local H = dofile(vim.fs.joinpath(vim.fs.dirname(debug.getinfo(1, 'S').source:sub(2)), 'harness.lua'))
local report = H.init(report_path, {})
H.record_progress_and_messages()

local function text(buf)
  return table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, false), '\n') .. '\n'
end

local function read(path)
  local f = assert(io.open(path))
  local t = f:read('a')
  f:close()
  return t
end

local function actions(client, buf)
  local resp = client:request_sync('textDocument/codeAction', {
    textDocument = vim.lsp.util.make_text_document_params(buf),
    range = { start = { line = 0, character = 0 }, ['end'] = { line = 0, character = 0 } },
    context = { diagnostics = {} },
  }, 5000, buf)
  assert(resp and not resp.err, 'codeAction failed: ' .. vim.inspect(resp))
  return resp.result or {}
end

local function main()
  H.setup(plugin_dir, server_bin, settings_json)
  local exp = H.open_and_attach(template .. '/experiment.py')
  report.before = text(exp)

  local reply, client = H.open_and_attach(template .. '/reply.md')
  local apply
  for _, a in ipairs(actions(client, reply)) do
    if a.title:match('^Apply agent edits') then
      apply = a
    end
  end
  assert(apply, 'no Apply agent edits action')
  report.action_title = apply.title
  local answer = H.exec_cmd(client, reply, apply.command)
  report.answer = answer.result
  H.wait_for("the reply's edit in experiment.py", 5000, function()
    return text(exp):find('# pasted from a chat', 1, true) ~= nil
  end)
  report.applied = text(exp)
  report.disk_after_apply = read(template .. '/experiment.py')
  vim.api.nvim_buf_call(exp, function()
    vim.cmd('undo')
  end)
  report.undone = text(exp)

  -- A reply that does not apply: nothing changes, the reply says why.
  local bad = H.open_and_attach(template .. '/bad_reply.md')
  local failed
  require('aisci').apply_reply(bad, function(err)
    failed = err or false
  end)
  H.wait_for('the refusal', 5000, function()
    return failed ~= nil
  end)
  report.refusal = failed and failed.message or vim.NIL
  H.wait_for('the diagnostic on the reply', 5000, function()
    return #vim.diagnostic.get(bad) > 0
  end)
  report.bad_diagnostics = H.diagnostics_of(bad)
  report.after_bad = text(exp)
  report.plot_after_bad = read(template .. '/plot.py')

  for _, c in ipairs(vim.lsp.get_clients({ name = 'aisci' })) do
    c:stop()
  end
  vim.wait(3000, function()
    return #vim.lsp.get_clients({ name = 'aisci' }) == 0
  end, 10)
end

H.run('apply_reply.lua', main)
