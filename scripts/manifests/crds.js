// Validates Argo CD, Argo Rollouts and Prometheus-operator objects against their CRD schemas,
// as published in the @kubernetes-models packages. Usage: node crds.js NODE_MODULES FILE.json
// (FILE: a JSON array of objects). Prints one JSON line per object: {index, ok, error}.
"use strict";
const fs = require("fs");
const path = require("path");

const [modules, file] = process.argv.slice(2);
const models = {
  "argoproj.io/v1alpha1": {
    Rollout: "@kubernetes-models/argo-rollouts/argoproj.io/v1alpha1/Rollout",
    AnalysisTemplate: "@kubernetes-models/argo-rollouts/argoproj.io/v1alpha1/AnalysisTemplate",
    ClusterAnalysisTemplate: "@kubernetes-models/argo-rollouts/argoproj.io/v1alpha1/ClusterAnalysisTemplate",
    Application: "@kubernetes-models/argo-cd/argoproj.io/v1alpha1/Application",
    AppProject: "@kubernetes-models/argo-cd/argoproj.io/v1alpha1/AppProject",
    ApplicationSet: "@kubernetes-models/argo-cd/argoproj.io/v1alpha1/ApplicationSet",
  },
  "monitoring.coreos.com/v1": {
    ServiceMonitor: "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor",
    PodMonitor: "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor",
    PrometheusRule: "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule",
  },
};

const objects = JSON.parse(fs.readFileSync(file, "utf8"));
objects.forEach((obj, index) => {
  const module = (models[obj.apiVersion] || {})[obj.kind];
  if (!module) {
    console.log(JSON.stringify({ index, ok: false, error: `no CRD model for ${obj.apiVersion} ${obj.kind}` }));
    return;
  }
  const Model = require(path.join(modules, module))[obj.kind];
  try {
    new Model(obj).validate();
    console.log(JSON.stringify({ index, ok: true }));
  } catch (e) {
    console.log(JSON.stringify({ index, ok: false, error: String(e.message || e) }));
  }
});
