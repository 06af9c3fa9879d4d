-- Argo CD health check for sluice.dev/Rollout. Install it under
-- `resource.customizations.health.sluice.dev_Rollout` in the argocd-cm ConfigMap
-- (see argocd-cm-patch.yaml next to this file).
local hs = { status = "Progressing", message = "Waiting for the controller" }
if obj.status == nil then
  return hs
end
local status = obj.status
if status.observedGeneration == nil or obj.metadata.generation == nil
    or status.observedGeneration < obj.metadata.generation then
  hs.message = "Waiting for the controller to observe the latest spec"
  return hs
end
if status.conditions ~= nil then
  for _, c in ipairs(status.conditions) do
    if c.type == "InvalidSpec" and c.status == "True" then
      return { status = "Degraded", message = c.message or "Invalid spec" }
    end
  end
end
if obj.spec.paused == true then
  return { status = "Suspended", message = "Paused by a person" }
end
local message = status.message or ""
if status.phase == "Healthy" then
  return { status = "Healthy", message = message }
elseif status.phase == "Paused" then
  return { status = "Suspended", message = message }
elseif status.phase == "Degraded" then
  return { status = "Degraded", message = message }
end
return { status = "Progressing", message = message }
