-- End-to-end test script, run by server/tests/nvim_novelty.rs:
--
--   nvim --headless --clean --cmd 'filetype plugin indent off' -l check_novelty.lua \
--     PLUGIN_DIR SERVER_BIN TEMPLATE_DIR IDEA_NAME REPORT_JSON SETTINGS_JSON
--
-- Opens TEMPLATE_DIR/ideas.json through the plugin, asks for its code lenses, runs the
-- "Check novelty" lens of IDEA_NAME, waits for the job's progress to end and its
-- summary message, asks for the lenses again (before and after reloading the buffer
-- from disk, as `:checktime` does) and hovers over the idea.
--
-- Everything the server sent is written to REPORT_JSON; the Rust test does the asserting.
-- The script fails (non-zero exit) only when it cannot go on; the report then has `error`.

local plugin_dir, server_bin, template, idea, report_path, settings_json = unpack(arg)
assert(settings_json, 'usage: check_novelty.lua PLUGIN_DIR SERVER_BIN TEMPLATE_DIR IDEA_NAME REPORT_JSON SETTINGS_JSON')

local uv = vim.uv
local t0 = uv.hrtime()
local function now_ms()
  return (uv.hrtime() - t0) / 1e6
end

local report = {
  idea = idea,
  progress = {}, -- { at_ms, token, kind, title?, message?, percentage? }
  messages = {}, -- window/showMessage { at_ms, type, message }
  lens_refreshes = 0, -- workspace/codeLens/refresh requests
  steps = {},
}

local function step(name)
  table.insert(report.steps, { at_ms = now_ms(), step = name })
  io.stdout:write(('[%7.1f ms] %s\n'):format(now_ms(), name))
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
    return vim.NIL
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
record('workspace/codeLens/refresh', function()
  report.lens_refreshes = report.lens_refreshes + 1
end)

local function wait_for(what, timeout_ms, cond)
  if not vim.wait(timeout_ms, cond, 10) then
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

local function request(client, buf, method, params)
  local resp = client:request_sync(method, params, 5000, buf)
  assert(resp, method .. ': no answer within 5 s')
  assert(not resp.err, method .. ' failed: ' .. vim.inspect(resp.err))
  return resp.result
end

-- The lenses as { line, title, command, arguments }.
local function lenses(client, buf)
  local result = request(client, buf, 'textDocument/codeLens', {
    textDocument = vim.lsp.util.make_text_document_params(buf),
  }) or {}
  return vim.tbl_map(function(l)
    return {
      line = l.range.start.line,
      title = l.command and l.command.title,
      command = l.command and l.command.command,
      arguments = l.command and l.command.arguments,
      raw = l.command,
    }
  end, result)
end

-- 0-based line of the idea's "Name" in the buffer.
local function name_line(buf)
  for i, line in ipairs(vim.api.nvim_buf_get_lines(buf, 0, -1, true)) do
    if line:find('"Name": "' .. idea .. '"', 1, true) then
      return i - 1
    end
  end
  error('no idea called ' .. idea .. ' in the buffer', 0)
end

local function main()
  vim.opt.runtimepath:prepend(plugin_dir)
  require('aisci').setup({ cmd = { server_bin, 'lsp' }, settings = vim.json.decode(settings_json) })
  step('setup done')

  vim.cmd.edit(vim.fn.fnameescape(template .. '/ideas.json'))
  local buf = vim.api.nvim_get_current_buf()
  report.filetype = vim.bo[buf].filetype
  local client
  wait_for('client attached to ideas.json', 5000, function()
    client = require('aisci').client(buf)
    return client ~= nil and client.initialized and vim.lsp.buf_is_attached(buf, client.id)
  end)
  report.root_dir = client.root_dir
  report.lens_refresh_support = vim.tbl_get(client.capabilities or {}, 'workspace', 'codeLens', 'refreshSupport')
    == true

  report.lenses_before = lenses(client, buf)
  local lens
  for _, l in ipairs(report.lenses_before) do
    if l.title == 'Check novelty' and l.arguments and l.arguments[1].ideas and l.arguments[1].ideas[1] == idea then
      lens = l
    end
  end
  assert(lens, 'no "Check novelty" lens for ' .. idea .. ' in ' .. vim.inspect(report.lenses_before))
  report.lens_line = lens.line
  step('lens found on line ' .. lens.line)

  local answer
  client:exec_cmd(lens.raw, { bufnr = buf }, function(err, result)
    answer = { err = err, result = result }
  end)
  wait_for('executeCommand answer', 5000, function()
    return answer ~= nil
  end)
  report.execute_answer = answer
  assert(not answer.err, 'aisci.checkNovelty failed: ' .. vim.inspect(answer.err))
  local token = 'aisci-job-' .. answer.result.job
  report.token = token

  wait_for('progress end', 10000, function()
    return progress_of(token, 'end') ~= nil
  end)
  wait_for('summary message', 5000, function()
    for _, m in ipairs(report.messages) do
      if m.message:find('model call', 1, true) then
        return true
      end
    end
    return false
  end)

  -- The buffer still holds the text from before the check.
  report.lenses_before_reload = lenses(client, buf)
  -- Reload it from disk, as :checktime (autoread) does when the file changed.
  vim.cmd('checktime')
  wait_for('buffer reloaded with the verdict', 5000, function()
    return table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, true), '\n'):find('"novelty"', 1, true) ~= nil
  end)
  -- Let the didChange reach the server before asking.
  vim.wait(100)
  report.lenses_after = lenses(client, buf)

  local line = name_line(buf)
  report.hover_line = line
  local hover = request(client, buf, 'textDocument/hover', {
    textDocument = vim.lsp.util.make_text_document_params(buf),
    position = { line = line, character = 4 },
  })
  report.hover = hover and hover.contents or vim.NIL
  step('hover done')

  vim.wait(100)
  client:stop()
  report.server_stopped = vim.wait(3000, function()
    return client:is_stopped()
  end, 10)
  step('client stopped')
end

local ok, err = xpcall(main, debug.traceback)
report.total_ms = now_ms()
if not ok then
  report.error = tostring(err)
  io.stderr:write('check_novelty.lua: ' .. tostring(err) .. '\n')
end
write_report()
if ok then
  vim.cmd('qa!')
else
  vim.cmd('cquit 1')
end
