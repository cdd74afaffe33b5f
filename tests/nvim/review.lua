-- Drives headless Neovim for tests/nvim_review.rs: with the aisci plugin, opens an
-- idea's latex/template.tex, runs "Review the paper", records the review's diagnostics,
-- the lens and the hover on \title, applies "Revise to address this comment" on the
-- weakness, then "Revise for all ... then review again", and records the new review.
--
--   nvim --headless --clean -l review.lua PLUGIN_DIR SERVER_BIN TEX REPORT SETTINGS_JSON

local plugin_dir, server_bin, tex, report_path, settings_json = unpack(arg)
assert(settings_json, 'usage: review.lua PLUGIN_DIR SERVER_BIN TEX REPORT SETTINGS_JSON')

local H = dofile(vim.fs.joinpath(vim.fs.dirname(debug.getinfo(1, 'S').source:sub(2)), 'harness.lua'))
local report = H.init(report_path, {})
H.record_progress_and_messages()
H.record_diagnostics()
local step, wait_for = H.step, H.wait_for

local function review_diags(buf)
  local out = {}
  for _, d in ipairs(vim.diagnostic.get(buf)) do
    if d.source == 'aisci review' then
      table.insert(out, { lnum = d.lnum, col = d.col, end_col = d.end_col, severity = d.severity, message = d.message, code = d.code })
    end
  end
  table.sort(out, function(a, b)
    return a.code < b.code
  end)
  return out
end

local function line_with(buf, needle)
  for i, l in ipairs(vim.api.nvim_buf_get_lines(buf, 0, -1, true)) do
    if l:find(needle, 1, true) then
      return i - 1
    end
  end
end

-- Applies the first code action whose title starts with `prefix`, at (row, 0).
local function apply_action(row, prefix)
  vim.api.nvim_win_set_cursor(0, { row + 1, 0 })
  vim.lsp.buf.code_action({
    apply = true,
    filter = function(a)
      return a.title:sub(1, #prefix) == prefix
    end,
  })
  vim.wait(200, function()
    return false
  end)
end

local function job_ended(pattern)
  for _, p in ipairs(report.progress) do
    if p.kind == 'end' and p.message and p.message:find(pattern, 1, true) then
      return true
    end
  end
  return false
end

local function lens_titles(buf, client)
  local res = client:request_sync('textDocument/codeLens', { textDocument = vim.lsp.util.make_text_document_params(buf) }, 5000, buf)
  return vim.tbl_map(function(l)
    return l.command.title
  end, (res and res.result) or {})
end

local function title_hover(buf, client)
  local row = line_with(buf, '\\title{')
  local res = client:request_sync('textDocument/hover', {
    textDocument = vim.lsp.util.make_text_document_params(buf),
    position = { line = row, character = 2 },
  }, 5000, buf)
  return res and res.result and res.result.contents.value
end

local function main()
  H.setup(plugin_dir, server_bin, settings_json)
  local buf, client = H.open_and_attach(tex)
  report.lenses_before = lens_titles(buf, client)

  apply_action(0, 'Review the paper')
  wait_for('the review job to end', 30000, function()
    return job_ended('Overall')
  end)
  wait_for('the review diagnostics', 10000, function()
    return #review_diags(buf) == 3
  end)
  report.first = review_diags(buf)
  report.lines = {
    quote = line_with(buf, 'accuracy improves on every dataset'),
    results = line_with(buf, '\\section{Results}'),
    title = line_with(buf, '\\title{'),
  }
  report.lenses_after_review = lens_titles(buf, client)
  report.hover = title_hover(buf, client)

  -- The quick fix on the weakness revises its passage in the buffer.
  apply_action(report.lines.quote, 'Revise to address this comment')
  wait_for('the revision in the buffer', 30000, function()
    return line_with(buf, 'accuracy improves on two of the three datasets') ~= nil
  end)
  wait_for('the revision job to end', 60000, function()
    return job_ended('revision:')
  end)
  wait_for('the addressed weakness to leave', 10000, function()
    return #review_diags(buf) == 2
  end)
  report.after_fix = review_diags(buf)
  report.revised_line = vim.api.nvim_buf_get_lines(buf, report.lines.quote, report.lines.quote + 1, true)[1]

  -- Revise for every open comment, then the review again.
  apply_action(0, 'Revise for all')
  wait_for('the second review', 90000, function()
    return job_ended('reviewed again')
  end)
  wait_for('the new review diagnostics', 10000, function()
    local d = review_diags(buf)
    return #d == 1 and d[1].message:find('second review', 1, true) ~= nil
  end)
  report.second = review_diags(buf)
  report.lenses_after_second = lens_titles(buf, client)
  report.hover_second = title_hover(buf, client)
  report.final_lines = vim.api.nvim_buf_get_lines(buf, 0, -1, true)
  -- Undo takes the last revision back.
  vim.cmd.undo()
  report.after_undo_limitation_line = line_with(buf, 'Only three toy datasets are studied.')
  step('done')
end

H.run('review.lua', main)
