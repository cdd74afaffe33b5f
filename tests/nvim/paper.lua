-- Drives headless Neovim for tests/nvim_paper.rs: with the aisci plugin, opens an
-- idea's latex/template.tex, waits for the static-check diagnostics, applies the quick fix
-- of a mistyped citation key, then runs the "Write this section: Results" code action and
-- records the buffer after the model's edit arrived and the diagnostics then.
--
--   nvim --headless --clean -l paper.lua PLUGIN_DIR SERVER_BIN TEX REPORT SETTINGS_JSON

local plugin_dir, server_bin, tex, report_path, settings_json = unpack(arg)
assert(settings_json, 'usage: paper.lua PLUGIN_DIR SERVER_BIN TEX REPORT SETTINGS_JSON')

local H = dofile(vim.fs.joinpath(vim.fs.dirname(debug.getinfo(1, 'S').source:sub(2)), 'harness.lua'))
local report = H.init(report_path, {})
H.record_progress_and_messages()
H.record_diagnostics()
local step, wait_for, diagnostics_of = H.step, H.wait_for, H.diagnostics_of

local function has_diag(buf, pattern)
  for _, d in ipairs(vim.diagnostic.get(buf)) do
    if d.message:find(pattern, 1, true) then
      return d
    end
  end
end

local function line_with(buf, needle)
  for i, l in ipairs(vim.api.nvim_buf_get_lines(buf, 0, -1, true)) do
    if l:find(needle, 1, true) then
      return i - 1
    end
  end
end

-- Applies the one code action whose title is `title` at (row, 0), through Neovim's own
-- code-action machinery.
local function apply_action(buf, row, title)
  vim.api.nvim_win_set_cursor(0, { row + 1, 0 })
  local done = false
  vim.lsp.buf.code_action({
    apply = true,
    filter = function(a)
      return a.title == title
    end,
  })
  -- code_action is asynchronous; wait until the request round trip is over.
  vim.wait(200, function()
    return done
  end)
end

local function main()
  H.setup(plugin_dir, server_bin, settings_json)
  local buf, client = H.open_and_attach(tex)
  report.filetype = vim.bo[buf].filetype

  -- The template's placeholders are reported while nothing was typed.
  wait_for('the Results placeholder diagnostic', 10000, function()
    return has_diag(buf, 'template placeholder "RESULTS HERE"') ~= nil
  end)
  report.placeholder = has_diag(buf, 'template placeholder "RESULTS HERE"').lnum
  report.results_line = line_with(buf, 'RESULTS HERE')

  -- A mistyped key, typed into the buffer: an error with a quick fix.
  local intro = line_with(buf, 'INTRO HERE')
  vim.api.nvim_buf_set_lines(buf, intro + 1, intro + 1, true, { 'As in \\citep{chizat2019lazzy}.' })
  wait_for('the undefined citation diagnostic', 10000, function()
    return has_diag(buf, 'citation "chizat2019lazzy" is not in the bibliography') ~= nil
  end)
  local d = has_diag(buf, 'citation "chizat2019lazzy"')
  report.citation_diag = { lnum = d.lnum, severity = d.severity, message = d.message }
  apply_action(buf, d.lnum, 'Change to "chizat2019lazy"')
  wait_for('the quick fix in the buffer', 5000, function()
    return line_with(buf, '\\citep{chizat2019lazy}.') ~= nil
  end)
  report.fixed_line = vim.api.nvim_buf_get_lines(buf, intro + 1, intro + 2, true)[1]
  wait_for('the citation diagnostic to clear', 10000, function()
    return has_diag(buf, 'not in the bibliography') == nil
  end)
  vim.cmd.write()
  step('saved')

  -- "Write this section: Results" from inside the Results section.
  local results = line_with(buf, 'RESULTS HERE')
  apply_action(buf, results, 'Write this section: Results')
  wait_for('the model text in the buffer', 20000, function()
    return line_with(buf, 'The baseline reaches a validation accuracy of 0.95 on blobs.') ~= nil
  end)
  wait_for('the writing job to end', 60000, function()
    for _, p in ipairs(report.progress) do
      if p.kind == 'end' and p.message and p.message:find('part%(s%) written') then
        return true
      end
    end
    return false
  end)
  wait_for('the Results placeholder diagnostic to clear', 10000, function()
    return has_diag(buf, 'template placeholder "RESULTS HERE"') == nil
  end)
  report.lines = vim.api.nvim_buf_get_lines(buf, 0, -1, true)
  report.modified = vim.bo[buf].modified
  report.final_diagnostics = diagnostics_of(buf)
  -- :undo takes the model's edit back.
  vim.cmd.undo()
  report.after_undo_has_placeholder = line_with(buf, 'RESULTS HERE') ~= nil
end

H.run('paper.lua', main)
