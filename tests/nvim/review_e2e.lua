-- Drives headless Neovim for tests/nvim_agent_edits.rs: with the aisci plugin, the real
-- server and `edits.review = "experiment"`, implements an idea from the template's
-- ideas.json; the model's edit arrives as a proposal in the review buffer, the script
-- rejects the first hunk and accepts the second (x, a, s), and records the buffer and
-- the file once the job has ended.
--
--   nvim --headless --clean -l review_e2e.lua PLUGIN_DIR SERVER_BIN TEMPLATE IDEA REPORT SETTINGS_JSON

local plugin_dir, server_bin, template, idea, report_path, settings_json = unpack(arg)
assert(settings_json, 'usage: review_e2e.lua PLUGIN_DIR SERVER_BIN TEMPLATE IDEA REPORT SETTINGS_JSON')

local H = dofile(vim.fs.joinpath(vim.fs.dirname(debug.getinfo(1, 'S').source:sub(2)), 'harness.lua'))
local report = H.init(report_path, { notes = {} })
H.record_progress_and_messages()
H.record_show_document()
vim.notify = function(msg)
  table.insert(report.notes, msg)
end

local function main()
  H.setup(plugin_dir, server_bin, settings_json)
  local ideas_buf, client = H.open_and_attach(template .. '/ideas.json')
  local answer = H.exec_cmd(client, ideas_buf, {
    title = 'Implement idea',
    command = 'aisci.implementIdea',
    arguments = { { template = template, idea = idea } },
  })
  assert(not answer.err, vim.inspect(answer.err))
  local token = 'aisci-job-' .. answer.result.job

  local exp_buf
  H.wait_for('experiment.py opened', 5000, function()
    local name = vim.api.nvim_buf_get_name(0)
    if #report.show_document > 0 and name:match('/results/.*/experiment%.py$') then
      exp_buf = vim.api.nvim_get_current_buf()
      return true
    end
    return false
  end)
  report.exp_path = vim.api.nvim_buf_get_name(exp_buf)

  -- The proposal opens its review buffer beside; the cursor stays where it was.
  local review_buf
  H.wait_for('the review buffer', 15000, function()
    for _, b in ipairs(vim.api.nvim_list_bufs()) do
      if vim.api.nvim_buf_get_name(b):match('^aisci://review/') then
        review_buf = b
        return true
      end
    end
    return false
  end)
  report.review_lines = vim.api.nvim_buf_get_lines(review_buf, 0, -1, false)
  report.buffer_before_decision = vim.api.nvim_buf_get_lines(exp_buf, 0, -1, true)
  vim.api.nvim_set_current_win(vim.fn.bufwinid(review_buf))
  vim.api.nvim_feedkeys(']h', 'mx', false)
  vim.api.nvim_feedkeys('[h', 'mx', false)
  -- Reject the first hunk (the cursor moves to the next undecided one), accept that one.
  vim.api.nvim_feedkeys('x', 'mx', false)
  vim.api.nvim_feedkeys('a', 'mx', false)
  vim.api.nvim_feedkeys('s', 'mx', false)

  H.wait_for('the job to end', 30000, function()
    return H.progress_of(token, 'end') ~= nil
  end)
  report.buffer_after = vim.api.nvim_buf_get_lines(exp_buf, 0, -1, true)
  report.review_open_after = vim.api.nvim_buf_is_valid(review_buf) and vim.fn.bufwinid(review_buf) ~= -1

  for _, c in ipairs(vim.lsp.get_clients({ name = 'aisci' })) do
    c:stop()
  end
  vim.wait(3000, function()
    return #vim.lsp.get_clients({ name = 'aisci' }) == 0
  end, 10)
end

H.run('review_e2e.lua', main)
