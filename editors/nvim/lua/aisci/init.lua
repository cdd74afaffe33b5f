--- aisci for Neovim (0.11+): starts the `aisci lsp` language server for buffers inside a
--- research template (a folder with experiment.py and prompt.json) or an idea folder
--- (results/<template>/<YYYYmmdd_HHMMSS>_<name>/), and adds :AisciGenerateIdeas,
--- :AisciLaunchRun, :AisciRuns (every run of the workspace in the quickfix list),
--- :AisciRunOutput (a run's live output in a scratch buffer) and :AisciCancel.
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
  filetypes = { 'python', 'json', 'jsonc', 'tex', 'plaintex' },
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

--- Starts (or reuses) the server for `bufnr` when it lies in a project folder.
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
  local cfg = M.config
  local has_settings = next(cfg.settings) ~= nil
  return vim.lsp.start({
    name = NAME,
    cmd = cfg.cmd,
    cmd_env = cfg.cmd_env,
    root_dir = root,
    workspace_folders = { { uri = vim.uri_from_fname(root), name = vim.fs.basename(root) } },
    -- An empty Lua table would go out as `[]`, which the server rejects: send nothing.
    init_options = has_settings and cfg.settings or nil,
    -- Also for `workspace/configuration` (section "aisci"); the server reads both shapes.
    settings = has_settings and { aisci = cfg.settings } or {},
    on_attach = cfg.on_attach,
    handlers = {
      ['$/progress'] = on_progress,
      ['workspace/applyEdit'] = on_apply_edit,
      ['aisci/runOutput'] = on_run_output,
    },
  }, { bufnr = bufnr, reuse_client = reuse_client })
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
    title = 'Generate research ideas',
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
  vim.api.nvim_create_user_command('AisciGenerateIdeas', function()
    M.generate_ideas(0)
  end, { desc = 'aisci: generate research ideas for this template' })
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
