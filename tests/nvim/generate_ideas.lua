-- End-to-end test script, run by tests/nvim_e2e.rs:
--
--   nvim --headless --clean --cmd 'filetype plugin indent off' -l generate_ideas.lua \
--     MODE PLUGIN_DIR SERVER_BIN TEMPLATE_DIR REPORT_JSON SETTINGS_JSON
--
-- MODE "generate": open experiment.py through the plugin, run the "Generate
--   ideas" code action, wait for the job's progress to end, its message and showDocument,
--   then break prompt.json in a buffer and wait for its diagnostic.
-- MODE "cancel": twice, run :AisciGenerateIdeas, wait for the first progress report and
--   cancel the job, first with window/workDoneProgress/cancel for its token, then with
--   :AisciCancel <id>; wait for the progress end each time.
--
-- Everything the server sent is written to REPORT_JSON; the Rust test does the asserting.
-- The script fails (non-zero exit) only when it cannot go on; the report then has `error`.

local mode, plugin_dir, server_bin, template, report_path, settings_json = unpack(arg)
assert(report_path, 'usage: generate_ideas.lua MODE PLUGIN_DIR SERVER_BIN TEMPLATE_DIR REPORT_JSON SETTINGS_JSON')

local H = dofile(vim.fs.joinpath(vim.fs.dirname(debug.getinfo(1, 'S').source:sub(2)), 'harness.lua'))
local report = H.init(report_path, { mode = mode })
H.record_progress_and_messages()
H.record_show_document()
H.record_diagnostics()
local now_ms, step, wait_for, progress_of, open_and_attach = H.now_ms, H.step, H.wait_for, H.progress_of, H.open_and_attach

local function run_generate(client, buf)
  local resp = client:request_sync('textDocument/codeAction', {
    textDocument = vim.lsp.util.make_text_document_params(buf),
    range = { start = { line = 0, character = 0 }, ['end'] = { line = 0, character = 0 } },
    context = { diagnostics = {} },
  }, 5000, buf)
  assert(resp and not resp.err, 'codeAction failed: ' .. vim.inspect(resp))
  report.code_actions = resp.result or {}
  local action
  for _, a in ipairs(report.code_actions) do
    if a.title:sub(1, #'Generate ideas (') == 'Generate ideas (' then
      action = a
    end
  end
  assert(action and action.command, 'no "Generate ideas" action in ' .. vim.inspect(resp.result))
  step('code action found')

  local answer = H.exec_cmd(client, buf, action.command)
  report.execute_answer = answer
  assert(not answer.err, 'aisci.generateIdeas failed: ' .. vim.inspect(answer.err))
  local token = 'aisci-job-' .. answer.result.job
  report.token = token

  wait_for('progress end', 12000, function()
    return progress_of(token, 'end') ~= nil
  end)
  wait_for('summary message and showDocument', 5000, function()
    return #report.show_document > 0 and #report.messages > 0
  end)
  report.current_buffer_after_show = vim.api.nvim_buf_get_name(0)

  -- Break prompt.json in the editor (not on disk): "system" must be a string.
  local prompt_buf = open_and_attach(template .. '/prompt.json')
  local prompt_uri = vim.uri_from_bufnr(prompt_buf)
  report.prompt_uri = prompt_uri
  local line = vim.api.nvim_buf_get_lines(prompt_buf, 1, 2, true)[1]
  assert(line:match('^%s*"system"'), 'line 2 of prompt.json is not "system": ' .. line)
  vim.api.nvim_buf_set_lines(prompt_buf, 1, 2, true, { '    "system": 42,' })
  step('prompt.json edited')
  wait_for('diagnostics for prompt.json', 5000, function()
    for _, d in ipairs(report.diagnostics) do
      if d.uri == prompt_uri and #d.diagnostics > 0 then
        return true
      end
    end
    return false
  end)
  -- Neovim itself took them in.
  report.nvim_diagnostics = H.diagnostics_of(prompt_buf)
end

-- Starts a job with :AisciGenerateIdeas, waits for its first report (the first model call
-- is then under way; the fake server holds it for seconds) and cancels it with `cancel`.
local function generate_then_cancel(via, cancel)
  local seen = #report.progress
  vim.cmd('AisciGenerateIdeas')
  step(':AisciGenerateIdeas')
  local token
  wait_for('first progress report', 5000, function()
    for i = seen + 1, #report.progress do
      if report.progress[i].kind == 'report' then
        token = report.progress[i].token
        return true
      end
    end
    return false
  end)
  vim.wait(300)
  local entry = { token = token, via = via, sent_ms = now_ms() }
  table.insert(report.cancels, entry)
  cancel(token)
  step('cancel sent via ' .. via)
  wait_for('progress end of ' .. token, 10000, function()
    return progress_of(token, 'end') ~= nil
  end)
end

local function run_cancel(client)
  report.cancels = {}
  -- The editor's cancel button: window/workDoneProgress/cancel for the token.
  generate_then_cancel('workDoneProgress/cancel', function(token)
    client:notify('window/workDoneProgress/cancel', { token = token })
  end)
  -- Again (the first job must have let go of the template), stopped by :AisciCancel.
  generate_then_cancel(':AisciCancel', function(token)
    vim.cmd('AisciCancel ' .. token:match('%d+$'))
  end)
  wait_for('two summary messages', 3000, function()
    return #report.messages >= 2
  end)
end

local function main()
  H.setup(plugin_dir, server_bin, settings_json)
  local buf, client = open_and_attach(template .. '/experiment.py')
  report.root_dir = client.root_dir
  report.filetype = vim.bo[buf].filetype
  report.capabilities = {
    codeAction = client.server_capabilities.codeActionProvider ~= nil,
    executeCommand = client.server_capabilities.executeCommandProvider,
  }
  if mode == 'generate' then
    run_generate(client, buf)
  elseif mode == 'cancel' then
    run_cancel(client)
  else
    error('unknown mode ' .. tostring(mode), 0)
  end
  -- Let late messages arrive, then shut the server down cleanly.
  vim.wait(200)
  client:stop()
  local stopped = vim.wait(3000, function()
    return client:is_stopped()
  end, 10)
  report.server_stopped = stopped
  step('client stopped')
end

H.run('generate_ideas.lua', main)
