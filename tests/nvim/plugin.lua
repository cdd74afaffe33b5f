-- Drives headless Neovim for tests/nvim_plugin.rs: require('aisci').setup{}, then each
-- user command against the fake model (which holds every request, so jobs stay running
-- until cancelled), :AisciJobs, :AisciCancel, and :checkhealth aisci. With MODE "start"
-- the script first takes vim.lsp.config away, as on Neovim 0.10, so that the plugin's
-- vim.lsp.start path is the one used.
--
--   nvim --headless --clean -l plugin.lua PLUGIN_DIR SERVER_BIN TEMPLATE IDEA_TEX REPORT SETTINGS_JSON MODE

local plugin_dir, server_bin, template, idea_tex, report_path, settings_json, mode = unpack(arg)
assert(mode, 'usage: plugin.lua PLUGIN_DIR SERVER_BIN TEMPLATE IDEA_TEX REPORT SETTINGS_JSON MODE')

local H = dofile(vim.fs.joinpath(vim.fs.dirname(debug.getinfo(1, 'S').source:sub(2)), 'harness.lua'))
local report = H.init(report_path, { notes = {}, commands = {} })
H.record_progress_and_messages()
local step, wait_for = H.step, H.wait_for

-- Every vim.notify, with its level.
vim.notify = function(msg, level)
  table.insert(report.notes, { msg = msg, level = level or vim.log.levels.INFO })
end

local function note_since(mark, pattern)
  for i = mark + 1, #report.notes do
    local n = report.notes[i]
    local cap = { n.msg:match(pattern) }
    if #cap > 0 or n.msg:find(pattern) then
      return n, cap
    end
  end
end

local function jobs_now()
  local got
  require('aisci').jobs(function(r)
    got = r
  end)
  wait_for('aisci.listJobs', 5000, function()
    return got ~= nil
  end)
  return got
end

-- Runs `:cmd`; waits for "(job N)"; cancels it unless `keep`; returns N.
local function job_command(cmd, keep)
  local mark = #report.notes
  vim.cmd(cmd)
  local note, cap
  wait_for('a job from :' .. cmd, 10000, function()
    note, cap = note_since(mark, '%(job (%d+)%)')
    return note ~= nil or note_since(mark, '.') ~= nil and note_since(mark, '.').level == vim.log.levels.ERROR
  end)
  assert(cap and cap[1], (':%s did not start a job: %s'):format(cmd, vim.inspect(report.notes[mark + 1])))
  local id = tonumber(cap[1])
  local entry = { cmd = cmd, job = id, said = note.msg }
  if not keep then
    local listed = jobs_now()
    entry.listed = vim.tbl_map(function(j)
      return j.title
    end, listed.jobs)
    local m2 = #report.notes
    vim.cmd('AisciCancel ' .. id)
    wait_for('cancelled ' .. id, 5000, function()
      return note_since(m2, 'cancelled job%(s%) ' .. id) ~= nil
    end)
    wait_for('no job left after ' .. cmd, 10000, function()
      return #jobs_now().jobs == 0
    end)
  end
  table.insert(report.commands, entry)
  return id
end

local function main()
  if mode == 'start' then
    -- What setup() sees on Neovim 0.10; Neovim's own code gets it back afterwards.
    local saved = vim.lsp.config
    vim.lsp.config = nil
    H.setup(plugin_dir, server_bin, settings_json)
    vim.lsp.config = saved
  else
    H.setup(plugin_dir, server_bin, settings_json)
  end
  report.registration = require('aisci').registration
  local exp_buf = H.open_and_attach(template .. '/experiment.py')

  job_command('AisciIdeas')
  job_command('AisciNovelty')
  job_command('AisciImplement learning_rate_warmup')
  -- One run of the template (its run_0 exists): the real tiny experiment, to the end. The
  -- implement job showed the new idea folder's experiment.py; back to the template's.
  H.open_and_attach(template .. '/experiment.py')
  local run_job = job_command('AisciRun', true)
  wait_for('the run to end', 20000, function()
    for _, p in ipairs(report.progress) do
      if p.token == 'aisci-job-' .. run_job and p.kind == 'end' then
        return true
      end
    end
    return false
  end)
  vim.cmd('AisciJobs')

  H.open_and_attach(idea_tex)
  job_command('AisciWrite Results')
  job_command('AisciReview')
  local mark = #report.notes
  vim.cmd('AisciReview all')
  wait_for('the no-review error', 5000, function()
    return note_since(mark, 'no review yet') ~= nil
  end)
  report.revise_without_review = note_since(mark, 'no review yet')
  report.final_jobs = jobs_now()

  vim.cmd('checkhealth aisci')
  wait_for('the health report', 10000, function()
    return vim.bo.filetype == 'checkhealth' and #vim.api.nvim_buf_get_lines(0, 0, -1, false) > 10
  end)
  report.health = vim.api.nvim_buf_get_lines(0, 0, -1, false)
  report.help_tag = vim.fn.globpath(plugin_dir, 'doc/aisci.txt') ~= ''
  step('done')
  local _ = exp_buf
end

H.run('plugin.lua', main)
