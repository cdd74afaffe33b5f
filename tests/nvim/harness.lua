-- Shared by the end-to-end scripts in this folder (generate_ideas.lua, check_novelty.lua,
-- experiment.lua), each of which loads it with
--
--   local H = dofile(vim.fs.joinpath(vim.fs.dirname(debug.getinfo(1, 'S').source:sub(2)), 'harness.lua'))
--
-- It holds the report (H.report, written as JSON for the Rust test to check), records what
-- the server sends ($/progress, window/showMessage, window/showDocument,
-- textDocument/publishDiagnostics) while Neovim's own handlers still do their usual work,
-- and has the waits and the run-main-then-write-the-report-and-quit wrapper.

local H = {}

local uv = vim.uv
local t0 = uv.hrtime()

function H.now_ms()
  return (uv.hrtime() - t0) / 1e6
end

-- The report; the script adds its own fields. `progress`, `messages` and `steps` are
-- always there.
H.report = {
  progress = {}, -- { at_ms, token, kind, title?, message?, percentage? }
  messages = {}, -- window/showMessage { at_ms, type, message }
  steps = {}, -- what the script did, with times
}

local report_path

-- Where write_report writes; `fields` are added to the report.
function H.init(path, fields)
  report_path = path
  for k, v in pairs(fields or {}) do
    H.report[k] = v
  end
  return H.report
end

function H.step(name, extra)
  local s = vim.tbl_extend('force', { at_ms = H.now_ms(), step = name }, extra or {})
  table.insert(H.report.steps, s)
  io.stdout:write(('[%7.1f ms] %s\n'):format(s.at_ms, name))
end

function H.write_report()
  local f = assert(io.open(report_path, 'w'))
  f:write(vim.json.encode(H.report))
  f:close()
end

function H.handler_error(method, e)
  H.report.handler_errors = H.report.handler_errors or {}
  table.insert(H.report.handler_errors, method .. ': ' .. tostring(e))
end

-- Record what the server sends, then let Neovim's own handlers do their usual work.
function H.record(method, fn)
  local orig = vim.lsp.handlers[method]
  vim.lsp.handlers[method] = function(err, result, ctx, config)
    local ok, e = pcall(fn, result, ctx)
    if not ok then
      H.handler_error(method, e)
    end
    if orig then
      return orig(err, result, ctx, config)
    end
    return vim.NIL
  end
end

-- $/progress into report.progress, window/showMessage into report.messages.
function H.record_progress_and_messages()
  H.record('$/progress', function(r)
    local v = r.value or {}
    table.insert(H.report.progress, {
      at_ms = H.now_ms(),
      token = r.token,
      kind = v.kind,
      title = v.title,
      message = v.message,
      percentage = v.percentage,
    })
  end)
  H.record('window/showMessage', function(r)
    table.insert(H.report.messages, { at_ms = H.now_ms(), type = r.type, message = r.message })
  end)
end

-- window/showDocument into report.show_document.
function H.record_show_document()
  H.report.show_document = {} -- { at_ms, uri, takeFocus }
  H.record('window/showDocument', function(r)
    table.insert(H.report.show_document, { at_ms = H.now_ms(), uri = r.uri, takeFocus = r.takeFocus })
  end)
end

-- textDocument/publishDiagnostics into report.diagnostics.
function H.record_diagnostics()
  H.report.diagnostics = {} -- { at_ms, uri, diagnostics }
  H.record('textDocument/publishDiagnostics', function(r)
    table.insert(H.report.diagnostics, { at_ms = H.now_ms(), uri = r.uri, diagnostics = r.diagnostics })
  end)
end

function H.wait_for(what, timeout_ms, cond)
  if not vim.wait(timeout_ms, cond, 10) then
    error(('timed out after %d ms waiting for %s'):format(timeout_ms, what), 0)
  end
  H.step('got ' .. what)
end

-- The first recorded progress of `token` of `kind` ('begin', 'report', 'end').
function H.progress_of(token, kind)
  for _, p in ipairs(H.report.progress) do
    if p.token == token and p.kind == kind then
      return p
    end
  end
end

-- Puts the plugin on the runtimepath and sets it up to start `server_bin lsp` with the
-- settings (JSON).
function H.setup(plugin_dir, server_bin, settings_json)
  vim.opt.runtimepath:prepend(plugin_dir)
  require('aisci').setup({ cmd = { server_bin, 'lsp' }, settings = vim.json.decode(settings_json) })
  H.step('setup done')
end

-- Waits until the aisci client is initialized and attached to `buf`; returns it.
function H.wait_attached(buf, what)
  local client
  H.wait_for('client attached to ' .. what, 5000, function()
    client = require('aisci').client(buf)
    return client ~= nil and client.initialized and vim.lsp.buf_is_attached(buf, client.id)
  end)
  return client
end

-- Opens `path` and waits for the aisci client to attach; returns the buffer and client.
function H.open_and_attach(path)
  vim.cmd.edit(vim.fn.fnameescape(path))
  local buf = vim.api.nvim_get_current_buf()
  return buf, H.wait_attached(buf, vim.fs.basename(path))
end

-- Runs `client:exec_cmd(command)` and waits for its answer; fails on an error answer.
-- Returns the answer ({ err, result }).
function H.exec_cmd(client, buf, command)
  local answer
  client:exec_cmd(command, { bufnr = buf }, function(err, result)
    answer = { err = err, result = result }
  end)
  H.wait_for('executeCommand answer', 5000, function()
    return answer ~= nil
  end)
  return answer
end

-- Neovim's diagnostics of `buf`, as plain tables.
function H.diagnostics_of(buf)
  return vim.tbl_map(function(d)
    return { lnum = d.lnum, col = d.col, severity = d.severity, message = d.message }
  end, vim.diagnostic.get(buf))
end

-- Runs `main`; writes the report (with `error` if main failed) and quits Neovim, with a
-- non-zero exit if main failed.
function H.run(script_name, main)
  local ok, err = xpcall(main, debug.traceback)
  H.report.total_ms = H.now_ms()
  if not ok then
    H.report.error = tostring(err)
    io.stderr:write(script_name .. ': ' .. tostring(err) .. '\n')
  end
  H.write_report()
  if ok then
    vim.cmd('qa!')
  else
    vim.cmd('cquit 1')
  end
end

return H
