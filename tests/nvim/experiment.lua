-- Drives headless Neovim for tests/nvim_experiment.rs: with the aisci plugin,
-- opens a template's ideas.json, runs its "Implement idea" code lens for one idea,
-- lets Neovim open the experiment.py the server shows, and records what the editor saw:
-- the applyEdits, the buffer after the job, the traceback diagnostic of the failing
-- run, what :undo restores, and the code lenses of the idea folder's experiment.py.
--
--   nvim --headless --clean -l experiment.lua PLUGIN_DIR SERVER_BIN TEMPLATE IDEA REPORT SETTINGS_JSON

local plugin_dir, server_bin, template, idea, report_path, settings_json = unpack(arg)
assert(settings_json, 'usage: experiment.lua PLUGIN_DIR SERVER_BIN TEMPLATE IDEA REPORT SETTINGS_JSON')

local H = dofile(vim.fs.joinpath(vim.fs.dirname(debug.getinfo(1, 'S').source:sub(2)), 'harness.lua'))
local report = H.init(report_path, {
  apply_edits = {}, -- { at_ms, label, uri, version, edits, buffer_before, buffer_version, applied }
  error_diagnostics = nil, -- vim.diagnostic.get(buf) when the first ERROR appeared
})
H.record_progress_and_messages()
H.record_show_document()
local now_ms, step, wait_for, progress_of, diagnostics_of = H.now_ms, H.step, H.wait_for, H.progress_of, H.diagnostics_of

-- workspace/applyEdit: note the buffer before Neovim applies the edit, and the answer.
do
  local orig = vim.lsp.handlers['workspace/applyEdit']
  vim.lsp.handlers['workspace/applyEdit'] = function(err, result, ctx, config)
    local entry = { at_ms = now_ms(), label = result.label, client = ctx.client_id }
    local ok, e = pcall(function()
      local change = (result.edit.documentChanges or {})[1]
      if change then
        entry.uri = change.textDocument.uri
        entry.version = change.textDocument.version
        entry.edits = change.edits
        local buf = vim.uri_to_bufnr(change.textDocument.uri)
        if vim.api.nvim_buf_is_loaded(buf) then
          entry.buffer_before = vim.api.nvim_buf_get_lines(buf, 0, -1, true)
          entry.buffer_version = vim.lsp.util.buf_versions[buf]
        end
      end
    end)
    if not ok then
      H.handler_error('workspace/applyEdit', e)
    end
    local answer = orig(err, result, ctx, config)
    entry.applied = answer
    table.insert(report.apply_edits, entry)
    return answer
  end
end

local function lens_titles(client, buf)
  local resp = client:request_sync('textDocument/codeLens', {
    textDocument = vim.lsp.util.make_text_document_params(buf),
  }, 5000, buf)
  assert(resp and not resp.err, 'codeLens failed: ' .. vim.inspect(resp))
  return vim.tbl_map(function(l)
    return l.command and l.command.title or ''
  end, resp.result or {})
end

local function main()
  H.setup(plugin_dir, server_bin, settings_json)

  vim.cmd.edit(vim.fn.fnameescape(template .. '/ideas.json'))
  local ideas_buf = vim.api.nvim_get_current_buf()
  local client = H.wait_attached(ideas_buf, 'ideas.json')

  -- The "Implement idea" lens of the idea.
  local resp = client:request_sync('textDocument/codeLens', {
    textDocument = vim.lsp.util.make_text_document_params(ideas_buf),
  }, 5000, ideas_buf)
  assert(resp and not resp.err, 'codeLens failed: ' .. vim.inspect(resp))
  local lens
  report.ideas_lenses = {}
  for _, l in ipairs(resp.result or {}) do
    table.insert(report.ideas_lenses, l.command.title)
    local args = l.command.arguments and l.command.arguments[1] or {}
    if l.command.title:sub(1, #'Implement idea (') == 'Implement idea (' and args.idea == idea then
      lens = l
    end
  end
  assert(lens, 'no "Implement idea" lens for ' .. idea .. ' in ' .. vim.inspect(resp.result))
  report.lens_command = lens.command

  -- Capture the traceback diagnostic when it appears in the idea folder's experiment.py.
  vim.api.nvim_create_autocmd('DiagnosticChanged', {
    callback = function(ev)
      if report.error_diagnostics == nil and vim.api.nvim_buf_get_name(ev.buf):match('/results/.*/experiment%.py$') then
        if #vim.diagnostic.get(ev.buf, { severity = vim.diagnostic.severity.ERROR }) > 0 then
          report.error_diagnostics = diagnostics_of(ev.buf)
          report.error_diagnostics_at_ms = now_ms()
          report.buffer_at_error = vim.api.nvim_buf_get_lines(ev.buf, 0, -1, true)
        end
      end
    end,
  })

  local answer = H.exec_cmd(client, ideas_buf, lens.command)
  assert(not answer.err, 'aisci.implementIdea failed: ' .. vim.inspect(answer.err))
  local token = 'aisci-job-' .. answer.result.job
  report.token = token

  -- Neovim opens what the server shows.
  local exp_buf
  wait_for('experiment.py opened', 5000, function()
    local name = vim.api.nvim_buf_get_name(0)
    if #report.show_document > 0 and name:match('/results/.*/experiment%.py$') then
      exp_buf = vim.api.nvim_get_current_buf()
      return true
    end
    return false
  end)
  report.exp_path = vim.api.nvim_buf_get_name(exp_buf)
  report.exp_uri = vim.uri_from_bufnr(exp_buf)
  report.exp_filetype = vim.bo[exp_buf].filetype
  report.buffer_at_open = vim.api.nvim_buf_get_lines(exp_buf, 0, -1, true)
  -- Which aisci servers serve it (the template's, and one started for the idea folder?).
  vim.wait(500)
  report.exp_clients = vim.tbl_map(function(c)
    return { id = c.id, root_dir = c.root_dir, template_client = c.id == client.id }
  end, vim.lsp.get_clients({ bufnr = exp_buf }))

  wait_for('progress end', 20000, function()
    return progress_of(token, 'end') ~= nil
  end)
  report.end_message = progress_of(token, 'end').message
  wait_for('summary message', 5000, function()
    for _, m in ipairs(report.messages) do
      if m.message:match('run%(s%) completed') then
        return true
      end
    end
    return false
  end)
  vim.wait(300)

  report.buffer_after = vim.api.nvim_buf_get_lines(exp_buf, 0, -1, true)
  report.modified_after = vim.bo[exp_buf].modified
  report.diagnostics_after = diagnostics_of(exp_buf)
  report.exp_lenses = lens_titles(client, exp_buf)
  local own = require('aisci').client(exp_buf)
  if own and own.id ~= client.id then
    report.exp_lenses_own_client = lens_titles(own, exp_buf)
  end

  -- :undo in the experiment.py buffer takes back the last edit.
  vim.api.nvim_buf_call(exp_buf, function()
    vim.cmd('silent undo')
  end)
  report.buffer_after_undo = vim.api.nvim_buf_get_lines(exp_buf, 0, -1, true)
  vim.api.nvim_buf_call(exp_buf, function()
    vim.cmd('silent redo')
  end)
  report.buffer_after_redo = vim.api.nvim_buf_get_lines(exp_buf, 0, -1, true)

  vim.wait(100)
  for _, c in ipairs(vim.lsp.get_clients({ name = 'aisci' })) do
    c:stop()
  end
  report.servers_stopped = vim.wait(3000, function()
    return #vim.lsp.get_clients({ name = 'aisci' }) == 0
  end, 10)
  step('clients stopped')
end

H.run('experiment.lua', main)
