-- End-to-end test script, run by server/tests/nvim_e2e.rs:
--
--   nvim --headless --clean --cmd 'filetype plugin indent off' -l generate_ideas.lua \
--     MODE PLUGIN_DIR SERVER_BIN TEMPLATE_DIR REPORT_JSON SETTINGS_JSON
--
-- MODE "generate": open experiment.py through the plugin, run the "Generate research
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

local uv = vim.uv
local t0 = uv.hrtime()
local function now_ms()
  return (uv.hrtime() - t0) / 1e6
end

local report = {
  mode = mode,
  progress = {}, -- { at_ms, token, kind, title?, message?, percentage? }
  messages = {}, -- window/showMessage { at_ms, type, message }
  show_document = {}, -- { at_ms, uri, takeFocus }
  diagnostics = {}, -- textDocument/publishDiagnostics { at_ms, uri, diagnostics }
  steps = {}, -- what the script did, with times
}

local function step(name, extra)
  local s = vim.tbl_extend('force', { at_ms = now_ms(), step = name }, extra or {})
  table.insert(report.steps, s)
  io.stdout:write(('[%7.1f ms] %s\n'):format(s.at_ms, name))
end

local function write_report()
  local f = assert(io.open(report_path, 'w'))
  f:write(vim.json.encode(report))
  f:close()
end

-- Record what the server sends, then let Neovim's own handlers do their usual work.
local function record(method, fn)
  local orig = vim.lsp.handlers[method]
  vim.lsp.handlers[method] = function(err, result, ctx, config)
    local ok, e = pcall(fn, result, ctx)
    if not ok then
      report.handler_errors = report.handler_errors or {}
      table.insert(report.handler_errors, method .. ': ' .. tostring(e))
    end
    if orig then
      return orig(err, result, ctx, config)
    end
  end
end

record('$/progress', function(r)
  local v = r.value or {}
  table.insert(report.progress, {
    at_ms = now_ms(),
    token = r.token,
    kind = v.kind,
    title = v.title,
    message = v.message,
    percentage = v.percentage,
  })
end)
record('window/showMessage', function(r)
  table.insert(report.messages, { at_ms = now_ms(), type = r.type, message = r.message })
end)
record('window/showDocument', function(r)
  table.insert(report.show_document, { at_ms = now_ms(), uri = r.uri, takeFocus = r.takeFocus })
end)
record('textDocument/publishDiagnostics', function(r)
  table.insert(report.diagnostics, { at_ms = now_ms(), uri = r.uri, diagnostics = r.diagnostics })
end)

local function wait_for(what, timeout_ms, cond)
  local ok = vim.wait(timeout_ms, cond, 10)
  if not ok then
    error(('timed out after %d ms waiting for %s'):format(timeout_ms, what), 0)
  end
  step('got ' .. what)
end

local function progress_of(token, kind)
  for _, p in ipairs(report.progress) do
    if p.token == token and p.kind == kind then
      return p
    end
  end
end

local function open_and_attach(path)
  vim.cmd.edit(vim.fn.fnameescape(path))
  local buf = vim.api.nvim_get_current_buf()
  local client
  wait_for('client attached to ' .. vim.fs.basename(path), 5000, function()
    client = require('aisci').client(buf)
    return client ~= nil and client.initialized and vim.lsp.buf_is_attached(buf, client.id)
  end)
  return buf, client
end

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
    if a.title == 'Generate research ideas' then
      action = a
    end
  end
  assert(action and action.command, 'no "Generate research ideas" action in ' .. vim.inspect(resp.result))
  step('code action found')

  local answer
  client:exec_cmd(action.command, { bufnr = buf }, function(err, result)
    answer = { err = err, result = result }
  end)
  wait_for('executeCommand answer', 5000, function()
    return answer ~= nil
  end)
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
  report.nvim_diagnostics = vim.tbl_map(function(d)
    return { lnum = d.lnum, col = d.col, severity = d.severity, message = d.message }
  end, vim.diagnostic.get(prompt_buf))
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
  vim.opt.runtimepath:prepend(plugin_dir)
  local settings = vim.json.decode(settings_json)
  require('aisci').setup({ cmd = { server_bin, 'lsp' }, settings = settings })
  step('setup done')
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

local ok, err = xpcall(main, debug.traceback)
report.total_ms = now_ms()
if not ok then
  report.error = tostring(err)
  io.stderr:write('generate_ideas.lua: ' .. tostring(err) .. '\n')
end
write_report()
if ok then
  vim.cmd('qa!')
else
  vim.cmd('cquit 1')
end
