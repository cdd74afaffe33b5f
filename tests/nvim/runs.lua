-- Drives headless Neovim for tests/nvim_runs.rs: with the aisci plugin, opens a
-- template's experiment.py (one that runs until stopped), launches a run (what
-- :AisciLaunchRun runs), waits for its lens to say it runs, lists it with :AisciRuns (the
-- quickfix list), opens its output with :AisciRunOutput, cancels it with :AisciCancel,
-- and records what the editor saw.
--
--   nvim --headless --clean -l runs.lua PLUGIN_DIR SERVER_BIN TEMPLATE REPORT SETTINGS_JSON

local plugin_dir, server_bin, template, report_path, settings_json = unpack(arg)
assert(settings_json, 'usage: runs.lua PLUGIN_DIR SERVER_BIN TEMPLATE REPORT SETTINGS_JSON')

local H = dofile(vim.fs.joinpath(vim.fs.dirname(debug.getinfo(1, 'S').source:sub(2)), 'harness.lua'))
local report = H.init(report_path, {})
H.record_progress_and_messages()
local wait_for, progress_of = H.wait_for, H.progress_of

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
  local buf, client = H.open_and_attach(template .. '/experiment.py')

  -- What :AisciLaunchRun runs, with a callback to learn the job id.
  local job
  require('aisci').launch_run(buf, function(err, result)
    assert(not err, vim.inspect(err))
    job = result.job
  end)
  wait_for('launch answer', 5000, function()
    return job ~= nil
  end)
  report.job = job

  wait_for('running lens', 10000, function()
    for _, t in ipairs(lens_titles(client, buf)) do
      if t:match('^run_1 ⏳ running') then
        report.running_lens = t
        return true
      end
    end
    return false
  end)

  vim.cmd('AisciRuns')
  wait_for('quickfix list', 5000, function()
    return #vim.fn.getqflist() > 0
  end)
  report.quickfix = vim.tbl_map(function(item)
    return { file = vim.api.nvim_buf_get_name(item.bufnr), text = item.text }
  end, vim.fn.getqflist())
  vim.cmd('cclose')

  -- Its live output, in a scratch buffer.
  vim.api.nvim_set_current_buf(buf)
  vim.cmd('AisciRunOutput')
  local out_buf
  wait_for('output buffer', 5000, function()
    local name = vim.api.nvim_buf_get_name(0)
    if name:match('^aisci://.*/run_1/output$') then
      out_buf = vim.api.nvim_get_current_buf()
      return true
    end
    return false
  end)
  report.output_buffer = vim.api.nvim_buf_get_name(out_buf)
  -- The run prints a line every 50 ms.
  vim.wait(1500, function()
    local text = table.concat(vim.api.nvim_buf_get_lines(out_buf, 0, -1, false), '\n')
    return text:match('tick 5') ~= nil
  end, 20)
  report.output_lines = vim.api.nvim_buf_get_lines(out_buf, 0, -1, false)

  vim.cmd('AisciCancel ' .. job)
  local token = 'aisci-job-' .. job
  wait_for('progress end', 10000, function()
    return progress_of(token, 'end') ~= nil
  end)
  report.end_message = progress_of(token, 'end').message

  vim.api.nvim_set_current_buf(buf)
  wait_for('cancelled lens', 5000, function()
    for _, t in ipairs(lens_titles(client, buf)) do
      if t:match('^run_1 ✗') then
        report.ended_lens = t
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

H.run('runs.lua', main)
