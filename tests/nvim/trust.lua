-- Drives headless Neovim for tests/nvim_trust.rs: opens an untrusted template's paper,
-- whose aisci.toml sets a key only trusted folders may set; the server asks whether to
-- trust the folder, and Neovim's own window/showMessageRequest handler asks the user
-- (vim.ui.select, whose default is vim.fn.inputlist). The answer "1" (Trust this folder)
-- is typed into that prompt. Then the paper is built, and the build reads the latexmkrc.
--
--   nvim --headless --clean -l trust.lua PLUGIN_DIR SERVER_BIN TEX MARKER REPORT SETTINGS_JSON

local plugin_dir, server_bin, tex, marker, report_path, settings_json = unpack(arg)
assert(settings_json, 'usage: trust.lua PLUGIN_DIR SERVER_BIN TEX MARKER REPORT SETTINGS_JSON')

local H = dofile(vim.fs.joinpath(vim.fs.dirname(debug.getinfo(1, 'S').source:sub(2)), 'harness.lua'))
local report = H.init(report_path, { requests = {} })
H.record_progress_and_messages()

-- The keys are typed when the question arrives, before Neovim's handler (which still
-- does the asking) reads them from the typeahead, as it would read a user's.
local default = vim.lsp.handlers['window/showMessageRequest']
vim.lsp.handlers['window/showMessageRequest'] = function(err, params, ctx, config)
  table.insert(report.requests, { at_ms = H.now_ms(), message = params.message, actions = params.actions })
  vim.api.nvim_feedkeys('1\r', 't', false)
  local answer = default(err, params, ctx, config)
  report.answer = answer
  return answer
end

local function main()
  H.setup(plugin_dir, server_bin, settings_json)
  local buf, client = H.open_and_attach(tex)
  H.wait_for('the trust confirmation', 10000, function()
    for _, m in ipairs(report.messages) do
      if m.message:find('is trusted now', 1, true) then
        return true
      end
    end
  end)
  H.exec_cmd(client, buf, { title = 'Build paper', command = 'aisci.buildPaper', arguments = { { tex = tex } } })
  H.wait_for('the latexmkrc to run', 60000, function()
    return vim.uv.fs_stat(marker) ~= nil
  end)
end

H.run('trust.lua', main)
