-- End-to-end test script, run by tests/nvim_novelty.rs:
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

local H = dofile(vim.fs.joinpath(vim.fs.dirname(debug.getinfo(1, 'S').source:sub(2)), 'harness.lua'))
local report = H.init(report_path, {
  idea = idea,
  lens_refreshes = 0, -- workspace/codeLens/refresh requests
})
H.record_progress_and_messages()
H.record('workspace/codeLens/refresh', function()
  report.lens_refreshes = report.lens_refreshes + 1
end)
local step, wait_for, progress_of = H.step, H.wait_for, H.progress_of

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
  H.setup(plugin_dir, server_bin, settings_json)

  vim.cmd.edit(vim.fn.fnameescape(template .. '/ideas.json'))
  local buf = vim.api.nvim_get_current_buf()
  report.filetype = vim.bo[buf].filetype
  local client = H.wait_attached(buf, 'ideas.json')
  report.root_dir = client.root_dir
  report.lens_refresh_support = vim.tbl_get(client.capabilities or {}, 'workspace', 'codeLens', 'refreshSupport')
    == true

  report.lenses_before = lenses(client, buf)
  local lens
  for _, l in ipairs(report.lenses_before) do
    if l.title:sub(1, #'Check novelty (') == 'Check novelty (' and l.arguments and l.arguments[1].ideas and l.arguments[1].ideas[1] == idea then
      lens = l
    end
  end
  assert(lens, 'no "Check novelty" lens for ' .. idea .. ' in ' .. vim.inspect(report.lenses_before))
  report.lens_line = lens.line
  step('lens found on line ' .. lens.line)

  local answer = H.exec_cmd(client, buf, lens.raw)
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

H.run('check_novelty.lua', main)
