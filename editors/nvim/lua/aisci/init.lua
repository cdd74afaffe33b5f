--- aisci for Neovim (0.10+; `vim.lsp.config`/`vim.lsp.enable` on 0.11+, `vim.lsp.start` on
--- 0.10): starts the `aisci lsp` language server for buffers inside a
--- research template (a folder with experiment.py and prompt.json) or an idea folder
--- (results/<template>/<YYYYmmdd_HHMMSS>_<name>/), and adds :AisciIdeas, :AisciNovelty,
--- :AisciImplement, :AisciRun, :AisciWrite, :AisciReview, :AisciJobs, :AisciGenerateIdeas,
--- :AisciLaunchRun, :AisciRuns (every run of the workspace in the quickfix list),
--- :AisciRunOutput (a run's live output in a scratch buffer), :AisciTree (the search over
--- implementations, see lua/aisci/tree.lua), :AisciEdits (the agent's edits waiting for
--- review, see lua/aisci/review.lua) and :AisciCancel.
---
---   require('aisci').setup({
---     cmd = { 'aisci', 'lsp' },
---     settings = { llm = { model = 'gpt-4o-2024-11-20' }, ideas = { num_ideas = 2 } },
---   })
local M = {}

local NAME = 'aisci'

--- @class aisci.Config
--- @field cmd string[] the server command
--- @field settings table sent as `initializationOptions` (and as the `aisci` settings section)
--- @field filetypes string[] buffers of these filetypes attach when inside a project folder
--- @field cmd_env? table extra environment for the server
--- @field on_attach? fun(client: vim.lsp.Client, bufnr: integer)
M.config = {
  cmd = { 'aisci', 'lsp' },
  settings = {},
  -- markdown and text: a model reply pasted there gets "Apply agent edits".
  filetypes = { 'python', 'json', 'jsonc', 'tex', 'plaintex', 'markdown', 'text' },
}

local function resolve(bufnr)
  return (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
end

local function is_file(path)
  local st = vim.uv.fs_stat(path)
  return st ~= nil and st.type == 'file'
end

local function is_template(dir)
  return is_file(dir .. '/experiment.py') and is_file(dir .. '/prompt.json')
end

--- `results/<template>/<YYYYmmdd_HHMMSS>_<name>/`
local function is_idea_folder(dir)
  local base = vim.fs.basename(dir)
  local results = vim.fs.dirname(vim.fs.dirname(dir))
  return base:match('^%d%d%d%d%d%d%d%d_%d%d%d%d%d%d_.') ~= nil and vim.fs.basename(results) == 'results'
end

--- The project folder (template or idea folder) that encloses `path`, or nil.
--- @param path string
--- @return string?
function M.root(path)
  if path == '' then
    return nil
  end
  path = vim.fs.normalize(vim.fn.fnamemodify(path, ':p'))
  for dir in vim.fs.parents(path) do
    if is_template(dir) or is_idea_folder(dir) then
      return dir
    end
  end
  return nil
end

--- Progress as Neovim shows it; when an aisci job ends, re-read files it may have
--- rewritten (ideas.json, notes.txt) into unmodified buffers ('autoread').
local function on_progress(err, result, ctx, config)
  local default = vim.lsp.handlers['$/progress']
  if default then
    default(err, result, ctx, config)
  end
  local token = result and result.token
  if type(token) == 'string' and token:match('^aisci%-job%-') and result.value and result.value.kind == 'end' then
    vim.schedule(function()
      pcall(vim.cmd.checktime)
    end)
  end
end

--- Each edit from aisci is its own undo step: Neovim would otherwise merge edits
--- that arrive without a user command in between into one.
local function on_apply_edit(err, result, ctx, config)
  local changes = result and result.edit and result.edit.documentChanges or {}
  for _, change in ipairs(changes) do
    local uri = change.textDocument and change.textDocument.uri
    if uri then
      local bufnr = vim.uri_to_bufnr(uri)
      if vim.api.nvim_buf_is_loaded(bufnr) then
        vim.api.nvim_buf_call(bufnr, function()
          vim.cmd('let &l:undolevels = &l:undolevels')
        end)
      end
    end
  end
  return vim.lsp.handlers['workspace/applyEdit'](err, result, ctx, config)
end

--- Scratch buffers showing a run's live output, by "<folder>#<run>".
M.output_bufs = {}

local function output_key(folder, run)
  return folder .. '#' .. tostring(run)
end

--- Appends text to the end of `buf`, continuing its last (unfinished) line.
local function append(buf, text)
  local lines = vim.split(text, '\n', { plain = true })
  local last = vim.api.nvim_buf_line_count(buf)
  local tail = vim.api.nvim_buf_get_lines(buf, last - 1, last, false)[1] or ''
  lines[1] = tail .. lines[1]
  vim.api.nvim_buf_set_lines(buf, last - 1, last, false, lines)
end

--- `aisci/runOutput`: appended to the run's output buffer when the user opened one.
local function on_run_output(_, result)
  local buf = result and M.output_bufs[output_key(result.folder, result.run)]
  if not buf then
    return
  end
  if not vim.api.nvim_buf_is_valid(buf) then
    M.output_bufs[output_key(result.folder, result.run)] = nil
    return
  end
  local text = result.text
  if result.stream == 'stderr' then
    text = text:gsub('([^\n]+)', '[stderr] %1')
  end
  append(buf, text)
end

--- One aisci server serves every template and idea folder of the session, so a
--- job started from a template reaches the idea folder's buffers too.
local function reuse_client(client, config)
  return client.name == config.name and not client:is_stopped()
end

--- Neovim's own client capabilities, plus the aisci extensions this plugin handles:
--- `aisciEditReview` tells the server that proposed edits (`aisci/editProposed`) are
--- reviewed here, so `edits.review` can hold the agent's edits back for the user.
local function capabilities()
  local caps = vim.lsp.protocol.make_client_capabilities()
  caps.experimental = vim.tbl_extend('force', caps.experimental or {}, { aisciEditReview = true })
  return caps
end

--- What every aisci client is started with (both registration paths).
local function client_settings()
  local cfg = M.config
  local has_settings = next(cfg.settings) ~= nil
  return {
    cmd = cfg.cmd,
    cmd_env = cfg.cmd_env,
    -- An empty Lua table would go out as `[]`, which the server rejects: send nothing.
    init_options = has_settings and cfg.settings or nil,
    -- Also for `workspace/configuration` (section "aisci"); the server reads both shapes.
    settings = has_settings and { aisci = cfg.settings } or {},
    on_attach = cfg.on_attach,
    capabilities = capabilities(),
    handlers = {
      ['$/progress'] = on_progress,
      ['workspace/applyEdit'] = on_apply_edit,
      ['aisci/runOutput'] = on_run_output,
      -- A node of a running search changed: a tree buffer showing its folder follows.
      ['aisci/searchChanged'] = function(_, result)
        if result and result.folder then
          require('aisci.tree').changed(result.folder)
        end
      end,
      -- The agent's edit waits for the user's review instead of landing (edits.review).
      ['aisci/editProposed'] = function(_, result)
        if result and result.id then
          require('aisci.review').proposed(result)
        end
      end,
      ['aisci/editResolved'] = function(_, result)
        if result and result.id then
          require('aisci.review').resolved(result)
        end
      end,
    },
  }
end

--- Starts (or reuses) the server for `bufnr` when it lies in a project folder, with
--- `vim.lsp.start` (the path taken on Neovim 0.10, which has no `vim.lsp.config`).
--- @param bufnr? integer
--- @return integer? client_id
function M.attach(bufnr)
  bufnr = resolve(bufnr)
  if vim.bo[bufnr].buftype ~= '' then
    return nil
  end
  local root = M.root(vim.api.nvim_buf_get_name(bufnr))
  if not root then
    return nil
  end
  local config = vim.tbl_extend('force', client_settings(), {
    name = NAME,
    root_dir = root,
    workspace_folders = { { uri = vim.uri_from_fname(root), name = vim.fs.basename(root) } },
  })
  return vim.lsp.start(config, { bufnr = bufnr, reuse_client = reuse_client })
end

--- Whether this Neovim registers servers with `vim.lsp.config`/`vim.lsp.enable` (0.11+).
function M.uses_lsp_enable()
  return type(vim.lsp.config) == 'table' and type(vim.lsp.enable) == 'function' and vim.fn.has('nvim-0.11') == 1
end

--- The aisci client for `bufnr` (attached, or serving the buffer's project folder).
--- @param bufnr? integer
--- @return vim.lsp.Client?
function M.client(bufnr)
  bufnr = resolve(bufnr)
  local c = vim.lsp.get_clients({ bufnr = bufnr, name = NAME })[1]
  if c then
    return c
  end
  local root = M.root(vim.api.nvim_buf_get_name(bufnr))
  for _, client in ipairs(vim.lsp.get_clients({ name = NAME })) do
    if root and client.root_dir == root then
      return client
    end
  end
  return nil
end

local function notify(msg, level)
  vim.notify('aisci: ' .. msg, level or vim.log.levels.INFO)
end

--- Runs `aisci.generateIdeas` for the template of `bufnr`. `on_done(err, result)` gets the
--- server's answer (`{ job = id }`); the job itself reports through `$/progress`.
--- @param bufnr? integer
--- @param on_done? fun(err: lsp.ResponseError?, result: any)
function M.generate_ideas(bufnr, on_done)
  bufnr = resolve(bufnr)
  local client = M.client(bufnr)
  if not client then
    notify('this buffer is not inside a template (a folder with experiment.py and prompt.json)', vim.log.levels.ERROR)
    return
  end
  local root = client.root_dir or M.root(vim.api.nvim_buf_get_name(bufnr))
  client:exec_cmd({
    title = 'Generate ideas',
    command = 'aisci.generateIdeas',
    arguments = { { template = root } },
  }, { bufnr = bufnr }, function(err, result)
    if err then
      notify(err.message, vim.log.levels.ERROR)
    elseif result and result.job then
      notify(('generating ideas (job %d); :AisciCancel stops it'):format(result.job))
    end
    if on_done then
      on_done(err, result)
    end
  end)
end

--- Runs `aisci.cancel`: the job `id`, or every running job when nil.
--- @param id? integer
function M.cancel(id)
  local clients = vim.lsp.get_clients({ name = NAME })
  if #clients == 0 then
    notify('no aisci server is running', vim.log.levels.WARN)
    return
  end
  for _, client in ipairs(clients) do
    client:exec_cmd({ title = 'Cancel', command = 'aisci.cancel', arguments = { id } }, {}, function(err, result)
      if err then
        notify(err.message, vim.log.levels.ERROR)
      elseif result and result.cancelled and #result.cancelled > 0 then
        notify('cancelled job(s) ' .. table.concat(result.cancelled, ', '))
      end
    end)
  end
end

--- Runs `aisci.launchRun` for the experiment.py of `bufnr` (the server saves the buffer
--- and starts the next run_i). `on_done(err, result)` gets the answer (`{ job = id }`).
--- @param bufnr? integer
--- @param on_done? fun(err: lsp.ResponseError?, result: any)
function M.launch_run(bufnr, on_done)
  bufnr = resolve(bufnr)
  local client = M.client(bufnr)
  local name = vim.api.nvim_buf_get_name(bufnr)
  if not client or vim.fs.basename(name) ~= 'experiment.py' then
    notify('open an experiment.py inside a template or idea folder first', vim.log.levels.ERROR)
    return
  end
  client:exec_cmd({
    title = 'Launch run',
    command = 'aisci.launchRun',
    arguments = { { folder = vim.fs.dirname(name) } },
  }, { bufnr = bufnr }, function(err, result)
    if err then
      notify(err.message, vim.log.levels.ERROR)
    elseif result and result.job then
      notify(('run launched (job %d); :AisciCancel %d stops it'):format(result.job, result.job))
    end
    if on_done then
      on_done(err, result)
    end
  end)
end

--- Every run of the workspace (queued, running, done; GPU or Slurm job; elapsed; exit),
--- from `aisci.listRuns`. `on_list(runs)` gets the list; without it the runs go to the
--- quickfix list, each entry opening the run's stdout.txt.
--- @param on_list? fun(runs: table[])
function M.runs(on_list)
  local client = M.client(0) or vim.lsp.get_clients({ name = NAME })[1]
  if not client then
    notify('no aisci server is running', vim.log.levels.WARN)
    return
  end
  client:exec_cmd({ title = 'List runs', command = 'aisci.listRuns', arguments = {} }, {}, function(err, result)
    if err then
      notify(err.message, vim.log.levels.ERROR)
      return
    end
    local runs = result and result.runs or {}
    if on_list then
      return on_list(runs)
    end
    local items = {}
    for _, r in ipairs(runs) do
      table.insert(items, {
        filename = r.stdout,
        lnum = 1,
        text = ('%s  %s  %s'):format(r.title, r.elapsed, vim.fs.basename(r.folder)),
        user_data = { folder = r.folder, run = r.run },
      })
    end
    vim.fn.setqflist({}, ' ', { title = 'aisci runs', items = items })
    if #items == 0 then
      notify('no runs in this workspace')
    else
      vim.cmd('copen')
    end
  end)
end

--- Opens (or shows) the scratch buffer that receives the live output of `run` in
--- `folder`; returns it.
--- @param folder string
--- @param run integer
--- @return integer bufnr
function M.open_output(folder, run)
  local key = output_key(folder, run)
  local buf = M.output_bufs[key]
  if not (buf and vim.api.nvim_buf_is_valid(buf)) then
    buf = vim.api.nvim_create_buf(true, true)
    vim.bo[buf].buftype = 'nofile'
    vim.bo[buf].swapfile = false
    pcall(vim.api.nvim_buf_set_name, buf, ('aisci://%s/run_%d/output'):format(folder, run))
    M.output_bufs[key] = buf
  end
  vim.cmd.buffer(buf)
  return buf
end

--- :AisciRunOutput [run]: the live output of a run of the current buffer's folder (the
--- latest queued or running one when no number is given).
local function run_output_command(opts)
  local folder = M.root(vim.api.nvim_buf_get_name(0))
  if not folder then
    notify('this buffer is not inside a template or idea folder', vim.log.levels.ERROR)
    return
  end
  local wanted = opts.args ~= '' and tonumber(opts.args) or nil
  M.runs(function(runs)
    local pick
    for _, r in ipairs(runs) do
      if r.folder == folder and (r.run == wanted or (not wanted and (r.state == 'running' or r.state == 'queued'))) then
        pick = r
      end
    end
    if not pick then
      notify(wanted and ('no run_%d here'):format(wanted) or 'no run is queued or running here', vim.log.levels.WARN)
      return
    end
    M.open_output(pick.folder, pick.run)
  end)
end

--- The `latex/template.tex` of the buffer's idea folder (the buffer itself when it is a .tex).
--- @param bufnr? integer
--- @return string?
function M.paper(bufnr)
  local name = vim.api.nvim_buf_get_name(resolve(bufnr))
  if name:match('%.tex$') then
    return vim.fs.normalize(vim.fn.fnamemodify(name, ':p'))
  end
  local root = M.root(name)
  return root and (root .. '/latex/template.tex') or nil
end

--- Runs the server command `command` with `arguments` for `bufnr`'s project; says the
--- outcome (a job started, or the server's error). `on_done(err, result)` gets the answer.
--- @param bufnr? integer
--- @param command string
--- @param arguments table
--- @param what string what the job does, for the message ("reviewing the paper")
--- @param on_done? fun(err: lsp.ResponseError?, result: any)
function M.exec(bufnr, command, arguments, what, on_done)
  bufnr = resolve(bufnr)
  local client = M.client(bufnr) or vim.lsp.get_clients({ name = NAME })[1]
  if not client then
    notify('no aisci server for this buffer: open a file of a template or idea folder', vim.log.levels.ERROR)
    if on_done then
      on_done({ code = -1, message = 'no aisci server' }, nil)
    end
    return
  end
  client:exec_cmd({ title = what, command = command, arguments = arguments }, { bufnr = bufnr }, function(err, result)
    if err then
      notify(err.message, vim.log.levels.ERROR)
    elseif type(result) == 'table' and result.job then
      notify(('%s (job %d); :AisciCancel %d stops it'):format(what, result.job, result.job))
    end
    if on_done then
      on_done(err, result)
    end
  end)
end

--- :AisciApply: the model reply in `bufnr` applied to its project (what the code action
--- "Apply agent edits" does); blocks that do not apply become diagnostics on the reply.
function M.apply_reply(bufnr, on_done)
  bufnr = resolve(bufnr)
  local file = vim.api.nvim_buf_get_name(bufnr)
  M.exec(bufnr, 'aisci.applyReply', { { file = file } }, 'apply agent edits', function(err, result)
    if not err and type(result) == 'table' and result.files then
      notify(('applied the reply to %s; u in each file undoes it'):format(table.concat(result.files, ', ')))
    end
    if on_done then
      on_done(err, result)
    end
  end)
end

--- The template of the buffer (its folder, or the template of its idea folder is not
--- known here: the buffer must be inside the template).
local function template_of(bufnr)
  local root = M.root(vim.api.nvim_buf_get_name(resolve(bufnr)))
  if root and is_template(root) then
    return root
  end
  notify('open a file of a template (a folder with experiment.py and prompt.json) first', vim.log.levels.ERROR)
  return nil
end

--- Idea names of the template's ideas.json, for completion.
local function idea_names(bufnr)
  local root = M.root(vim.api.nvim_buf_get_name(resolve(bufnr)))
  local ok, ideas = pcall(function()
    return vim.json.decode(table.concat(vim.fn.readfile(root .. '/ideas.json'), '\n'))
  end)
  local names = {}
  if ok and type(ideas) == 'table' then
    for _, idea in ipairs(ideas) do
      if type(idea) == 'table' and type(idea.Name) == 'string' then
        table.insert(names, idea.Name)
      end
    end
  end
  return names
end

--- `aisci.checkNovelty` for the template's ideas (`names`, or every unchecked one).
function M.novelty(bufnr, names, on_done)
  local template = template_of(bufnr)
  if template then
    local args = { template = template }
    if names and #names > 0 then
      args.ideas = names
    end
    M.exec(bufnr, 'aisci.checkNovelty', { args }, 'checking novelty', on_done)
  end
end

--- `aisci.implementIdea`: the idea's folder, then the experiment agent and its runs.
function M.implement(bufnr, name, on_done)
  local template = template_of(bufnr)
  if template then
    M.exec(bufnr, 'aisci.implementIdea', { { template = template, idea = name } }, 'implementing ' .. name, on_done)
  end
end

--- :AisciRun [experiments|baseline|once]: in an idea folder the experiment loop, in a
--- template the baseline (run_0) when it is missing; `once` launches the next run_i of
--- this folder's experiment.py.
function M.run(bufnr, kind, on_done)
  bufnr = resolve(bufnr)
  local root = M.root(vim.api.nvim_buf_get_name(bufnr))
  if not root then
    notify('this buffer is not inside a template or idea folder', vim.log.levels.ERROR)
    return
  end
  if kind == nil or kind == '' then
    -- An idea folder holds a copy of its template's files: ask what it is first.
    if is_idea_folder(root) then
      kind = 'experiments'
    else
      kind = is_file(root .. '/run_0/final_info.json') and 'once' or 'baseline'
    end
  end
  if kind == 'experiments' then
    M.exec(bufnr, 'aisci.runExperiments', { { folder = root } }, 'running the experiments', on_done)
  elseif kind == 'baseline' then
    M.exec(bufnr, 'aisci.runBaseline', { { template = root } }, 'running the baseline', on_done)
  elseif kind == 'once' then
    M.exec(bufnr, 'aisci.launchRun', { { folder = root } }, 'run launched', on_done)
  else
    notify('usage: :AisciRun [experiments|baseline|once]', vim.log.levels.ERROR)
  end
end

--- `aisci.writePaper`: the whole paper, or one section: `section` is its title, or its
--- position among the `\section`s ("3": the third), which stays right when two share a title.
function M.write(bufnr, section, on_done)
  local tex = M.paper(bufnr)
  if not tex then
    notify('open a file of an idea folder (or its latex/template.tex) first', vim.log.levels.ERROR)
    return
  end
  local args = { tex = tex }
  local position = section and tonumber(section:match('^%s*(%d+)%s*$'))
  if position and position >= 1 then
    args.section = { level = 2, index = position - 1 }
  elseif section and section ~= '' then
    args.section = section
  end
  M.exec(bufnr, 'aisci.writePaper', { args }, section and ('writing ' .. section) or 'writing the paper', on_done)
end

--- `aisci.reviewPaper`, or with `revise`: `aisci.reviseAll` (revise for every open comment,
--- then review again) or `aisci.reviseFromReview` for one comment id ("weakness-0").
function M.review(bufnr, revise, on_done)
  local tex = M.paper(bufnr)
  if not tex then
    notify('open a file of an idea folder (or its latex/template.tex) first', vim.log.levels.ERROR)
    return
  end
  if revise == nil or revise == '' then
    M.exec(bufnr, 'aisci.reviewPaper', { { tex = tex } }, 'reviewing the paper', on_done)
  elseif revise == 'all' then
    M.exec(bufnr, 'aisci.reviseAll', { { tex = tex } }, 'revising for every review comment', on_done)
  else
    M.exec(bufnr, 'aisci.reviseFromReview', { { tex = tex, comment = revise } }, 'revising for ' .. revise, on_done)
  end
end

--- `aisci.listJobs`: the running jobs and the session's spending, as lines (or to `on_list`).
function M.jobs(on_list)
  M.exec(0, 'aisci.listJobs', {}, 'jobs', function(err, result)
    if err or type(result) ~= 'table' then
      return
    end
    if on_list then
      return on_list(result)
    end
    local lines = { ('aisci: $%.4f spent this session'):format(result.spentUsd or 0) }
    for _, j in ipairs(result.jobs or {}) do
      local secs = math.floor((j.elapsedMs or 0) / 1000)
      table.insert(lines, ('  job %d  %s  %s  %d:%02d  %s'):format(j.id, j.title, vim.fs.basename(j.target or ''), math.floor(secs / 60), secs % 60, j.message or ''))
    end
    if #(result.jobs or {}) == 0 then
      table.insert(lines, '  no job is running')
    end
    vim.notify(table.concat(lines, '\n'), vim.log.levels.INFO)
  end)
end

function M.create_commands()
  vim.api.nvim_create_user_command('AisciLaunchRun', function()
    M.launch_run(0)
  end, { desc = 'aisci: launch the next run_i of this experiment.py' })
  vim.api.nvim_create_user_command('AisciRuns', function()
    M.runs()
  end, { desc = 'aisci: every run of the workspace in the quickfix list' })
  vim.api.nvim_create_user_command('AisciRunOutput', run_output_command, {
    nargs = '?',
    desc = 'aisci: live output of a run of this folder (the running one when no number is given)',
  })
  vim.api.nvim_create_user_command('AisciTree', function()
    require('aisci.tree').open(0)
  end, { desc = "aisci: the search tree of this idea folder's experiment (diff, restore, branch)" })
  vim.api.nvim_create_user_command('AisciApply', function()
    M.apply_reply(0)
  end, { desc = "aisci: apply the SEARCH/REPLACE blocks of the reply in this buffer (all or none; u undoes them)" })
  vim.api.nvim_create_user_command('AisciEdits', function()
    require('aisci.review').open()
  end, { desc = "aisci: review the agent's edits that wait for it (accept or reject each hunk)" })
  vim.api.nvim_create_user_command('AisciGenerateIdeas', function()
    M.generate_ideas(0)
  end, { desc = 'aisci: Generate ideas for this template' })
  vim.api.nvim_create_user_command('AisciIdeas', function()
    M.generate_ideas(0)
  end, { desc = 'aisci: Generate ideas for this template' })
  vim.api.nvim_create_user_command('AisciNovelty', function(opts)
    M.novelty(0, opts.fargs)
  end, {
    nargs = '*',
    complete = function()
      return idea_names(0)
    end,
    desc = "aisci: check the novelty of these ideas (every unchecked one when none is named)",
  })
  vim.api.nvim_create_user_command('AisciImplement', function(opts)
    M.implement(0, opts.args)
  end, {
    nargs = 1,
    complete = function()
      return idea_names(0)
    end,
    desc = 'aisci: implement an idea (its folder, the experiment agent, its runs)',
  })
  vim.api.nvim_create_user_command('AisciRun', function(opts)
    M.run(0, opts.args)
  end, {
    nargs = '?',
    complete = function()
      return { 'experiments', 'baseline', 'once' }
    end,
    desc = 'aisci: run the experiments (idea folder), the baseline (template), or one run (once)',
  })
  vim.api.nvim_create_user_command('AisciWrite', function(opts)
    M.write(0, opts.args)
  end, {
    nargs = '?',
    complete = function()
      local tex = M.paper(0)
      local titles = {}
      if tex and is_file(tex) then
        for _, l in ipairs(vim.fn.readfile(tex)) do
          local t = l:match('^%s*\\section%*?{(.-)}')
          if t then
            table.insert(titles, t)
          end
        end
      end
      return titles
    end,
    desc = 'aisci: write the paper, or one section of it',
  })
  vim.api.nvim_create_user_command('AisciReview', function(opts)
    M.review(0, opts.args)
  end, {
    nargs = '?',
    complete = function()
      return { 'all' }
    end,
    desc = 'aisci: review the paper; ":AisciReview all" revises for every comment and reviews again; an id revises for one comment',
  })
  vim.api.nvim_create_user_command('AisciJobs', function()
    M.jobs()
  end, { desc = 'aisci: running jobs and the money spent this session' })
  vim.api.nvim_create_user_command('AisciCancel', function(opts)
    local id = opts.args ~= '' and tonumber(opts.args) or nil
    if opts.args ~= '' and not id then
      notify('usage: :AisciCancel [job id]', vim.log.levels.ERROR)
      return
    end
    M.cancel(id)
  end, { nargs = '?', desc = 'aisci: cancel a running job (all when no id is given)' })
end

--- @param opts? aisci.Config
function M.setup(opts)
  opts = opts or {}
  local cfg = vim.tbl_deep_extend('force', M.config, opts)
  -- Lists replace the defaults instead of merging into them index by index.
  cfg.cmd = opts.cmd or M.config.cmd
  cfg.filetypes = opts.filetypes or M.config.filetypes
  M.config = cfg
  M.create_commands()
  local group = vim.api.nvim_create_augroup('aisci', { clear = true })
  if M.uses_lsp_enable() then
    -- Neovim 0.11+: a named config; `enable` attaches buffers of these filetypes whose
    -- root_dir says they are in a project folder (and buffers already open).
    vim.lsp.config(NAME, vim.tbl_extend('force', client_settings(), {
      filetypes = cfg.filetypes,
      root_dir = function(bufnr, on_dir)
        if vim.bo[bufnr].buftype ~= '' then
          return
        end
        local root = M.root(vim.api.nvim_buf_get_name(bufnr))
        if root then
          on_dir(root)
        end
      end,
      reuse_client = reuse_client,
    }))
    vim.lsp.enable(NAME)
    M.registration = 'vim.lsp.enable'
    return
  end
  M.registration = 'vim.lsp.start'
  vim.api.nvim_create_autocmd('FileType', {
    group = group,
    pattern = M.config.filetypes,
    callback = function(ev)
      M.attach(ev.buf)
    end,
  })
  -- Buffers loaded before setup().
  for _, buf in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(buf) and vim.list_contains(M.config.filetypes, vim.bo[buf].filetype) then
      M.attach(buf)
    end
  end
end

return M
